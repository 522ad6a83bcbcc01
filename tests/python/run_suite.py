"""Runs CPython regression-test modules and prints one machine-readable line per
test, so that a run in the sandbox can be compared with a native run.

    python3.11 run_suite.py test_os [test_posix ...]

Each test prints as
    @@PYSUITE@@ <outcome> <test id>
with outcome one of ok, skip, fail, error, xfail, xpass. A subtest failure marks
its test failed. The modules run the way `python -m test` runs them by default:
no optional resources (network, largefile, cpu, ...) and a fresh temporary
working directory, so TESTFN files never land in the caller's directory.
Test output (stdout and stderr of the tests) goes to stderr; only the result
lines and a final `@@PYSUITE@@ done <module> <seconds>` go to stdout.

Module names may be dotted (test_asyncio.test_events). Tests listed in NORUN
(next to this file; `<test id or prefix*>  # reason`) are not run at all
(natively nor in the sandbox: e.g. they hang on some hosts) and print as skip.

`--not=FILE` (before the module names) adds FILE's patterns (same format) to
the tests not run: the harness passes EXCLUDE for the sandbox run, so excluded
tests (whose outcome is ignored there anyway) do not spend their timeouts.
"""

import os
import sys
import tempfile
import time
import unittest

MARK = "@@PYSUITE@@"


def norun_patterns(path=None):
    """The patterns of NORUN (or of `path`): test ids, or id prefixes ending in `*`."""
    if path is None:
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "NORUN")
    pats = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                pat, _, reason = line.partition("#")
                if not reason.strip():
                    raise SystemExit("%s: every entry needs a reason after '#': %s" % (path, line))
                pats.append(pat.strip())
    except FileNotFoundError:
        pass
    return pats


def _norun(tid, pats):
    return any(tid.startswith(p[:-1]) if p.endswith("*") else tid == p for p in pats)


def without_norun(suite, pats, dropped):
    """suite minus the tests NORUN names (their ids appended to dropped)."""
    out = unittest.TestSuite()
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            out.addTest(without_norun(t, pats, dropped))
        elif _norun(t.id(), pats):
            dropped.append(t.id())
        else:
            out.addTest(t)
    return out


class Recorder(unittest.TestResult):
    def __init__(self, out):
        super().__init__()
        self.out = out
        self.outcomes = {}

    def _set(self, test, outcome):
        tid = test.id()
        # A failing subtest (or a failing setUpClass) wins over a later "ok".
        prev = self.outcomes.get(tid)
        if prev in ("fail", "error") and outcome == "ok":
            return
        self.outcomes[tid] = outcome

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set(test, "fail")
        self._trace(test, err)

    def addError(self, test, err):
        super().addError(test, err)
        # Errors in setUpClass/setUpModule come with a _ErrorHolder "test".
        self._set(test, "error")
        self._trace(test, err)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._set(test, "skip")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._set(test, "xfail")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._set(test, "xpass")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            if issubclass(err[0], test.failureException):
                self._set(test, "fail")
            else:
                self._set(test, "error")
            self._trace(subtest, err)

    def _trace(self, test, err):
        sys.stderr.write("=== %s %s\n%s\n" % (MARK, test.id(), self._exc_info_to_string(err, test)))


def run_module(name, out, extra_norun=()):
    import test.support

    # As regrtest without -u: optional resources are off.
    test.support.use_resources = []
    test.support.verbose = 0
    start = time.monotonic()
    cwd = os.getcwd()
    work = tempfile.mkdtemp(prefix="pysuite_")
    os.chdir(work)
    try:
        loader = unittest.TestLoader()
        try:
            suite = loader.loadTestsFromName("test." + name)
        except unittest.SkipTest:
            out.write("%s skip %s\n" % (MARK, "test." + name))
            return
        except Exception:
            # The module does not even import: one error line for it.
            sys.stderr.write("=== %s test.%s (import)\n" % (MARK, name))
            import traceback

            traceback.print_exc()
            out.write("%s error %s\n" % (MARK, "test." + name))
            return
        dropped = []
        suite = without_norun(suite, norun_patterns() + list(extra_norun), dropped)
        result = Recorder(out)
        for tid in dropped:
            result.outcomes[tid] = "skip"
        suite.run(result)
        for tid in sorted(result.outcomes):
            out.write("%s %s %s\n" % (MARK, result.outcomes[tid], tid))
    finally:
        os.chdir(cwd)
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        out.write("%s done %s %.1f\n" % (MARK, name, time.monotonic() - start))
        out.flush()


def main():
    # Result lines on the real stdout; everything the tests print on stderr.
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    extra = []
    names = []
    for a in sys.argv[1:]:
        if a.startswith("--not="):
            extra += norun_patterns(a[len("--not="):])
        else:
            names.append(a)
    for name in names:
        run_module(name, out, extra)
    out.close()


if __name__ == "__main__":
    main()
