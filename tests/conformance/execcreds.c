/*
 * execcreds.c - the credentials execve gives (credentials(7),
 * capabilities(7)): set-user-ID and set-group-ID files, the group-execute
 * rule for set-group-ID, nosuid mounts, PR_SET_NO_NEW_PRIVS, root's
 * capabilities, ambient capabilities, AT_SECURE, dumpability and the
 * RLIMIT_STACK cap of a privileged exec.
 *
 * Each case forks a child that sets up its identity and execs a copy of this
 * very program (owned by uid/gid 1234, set-id as the case needs) with
 * EXECCREDS_REPORT=1 in its environment: the copy then prints its resulting
 * identity on one line (to a pipe) and exits before the harness runs.
 *
 * The copies live on a tmpfs mounted (without nosuid) over a directory made
 * under /dev/shm, plus a nosuid tmpfs inside it: the host's /dev/shm is often
 * nosuid itself. Natively the program runs in a private mount namespace
 * (see conformance.rs), as root.
 */
#include "harness.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/auxv.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#define REPORT_ENV "EXECCREDS_REPORT"

static unsigned long long status_caps(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return ~0ULL;
    char line[256];
    unsigned long long v = ~0ULL;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, n) == 0 && line[n] == ':') {
            v = strtoull(line + n + 1, NULL, 16);
            break;
        }
    }
    fclose(f);
    return v;
}

/* A capability set: 0, "bnd" when it is the whole bounding set (which
 * differs between hosts), else in hex. */
static const char *capstr(char *buf, size_t len, unsigned long long v,
                          unsigned long long bnd)
{
    if (v == 0)
        snprintf(buf, len, "0");
    else if (v == bnd)
        snprintf(buf, len, "bnd");
    else
        snprintf(buf, len, "%llx", v);
    return buf;
}

/* The report of an exec'd copy: runs before main and exits. */
__attribute__((constructor)) static void execcreds_report(void)
{
    if (!getenv(REPORT_ENV))
        return;
    uid_t r, e, s;
    gid_t gr, ge, gs;
    getresuid(&r, &e, &s);
    getresgid(&gr, &ge, &gs);
    int fsuid = setfsuid(-1), fsgid = setfsgid(-1);
    unsigned long long bnd = status_caps("CapBnd");
    struct rlimit rl;
    getrlimit(RLIMIT_STACK, &rl);
    char eff[32], prm[32], inh[32], amb[32];
    printf("ids=%u,%u,%u/%u,%u,%u fs=%d,%d eff=%s prm=%s inh=%s amb=%s "
           "secure=%lu dumpable=%d stack=%lu/%lu\n",
           r, e, s, gr, ge, gs, fsuid, fsgid,
           capstr(eff, sizeof eff, status_caps("CapEff"), bnd),
           capstr(prm, sizeof prm, status_caps("CapPrm"), bnd),
           capstr(inh, sizeof inh, status_caps("CapInh"), bnd),
           capstr(amb, sizeof amb, status_caps("CapAmb"), bnd),
           getauxval(AT_SECURE), prctl(PR_GET_DUMPABLE) == 1,
           (unsigned long)(rl.rlim_cur >> 20), (unsigned long)(rl.rlim_max >> 20));
    fflush(stdout);
    _exit(0);
}

static char dir[64];
static char nosuid_dir[80];
static int setup_state; /* 0: not yet, 1: done, -1: failed */

static void cleanup(void)
{
    umount2(nosuid_dir, MNT_DETACH);
    umount2(dir, MNT_DETACH);
    rmdir(dir);
}

/* Copies this program to `name` in `d`, owned by 1234:1234 with `mode`. */
static int install(const char *d, const char *name, mode_t mode)
{
    char self[4096], dst[256];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = 0;
    snprintf(dst, sizeof dst, "%s/%s", d, name);
    int in = open(self, O_RDONLY);
    int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC, 0700);
    if (in < 0 || out < 0)
        return -1;
    static char buf[1 << 16];
    ssize_t r;
    while ((r = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, r) != r)
            return -1;
    close(in);
    /* chown first: it clears the set-id bits. */
    if (r < 0 || fchown(out, 1234, 1234) || fchmod(out, mode) || close(out))
        return -1;
    return 0;
}

static int setup(void)
{
    if (setup_state)
        return setup_state > 0 ? 0 : -1;
    setup_state = -1;
    strcpy(dir, "/dev/shm/execcreds.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    if (mount("none", dir, "tmpfs", 0, "mode=0755")) {
        rmdir(dir);
        return -1;
    }
    snprintf(nosuid_dir, sizeof nosuid_dir, "%s/nosuid", dir);
    atexit(cleanup);
    if (mkdir(nosuid_dir, 0755) ||
        mount("none", nosuid_dir, "tmpfs", MS_NOSUID, "mode=0755"))
        return -1;
    if (install(dir, "plain", 0755) || install(dir, "suid", 04755) ||
        install(dir, "sgid", 02755) || install(dir, "sgid_nox", 02745) ||
        install(nosuid_dir, "suid", 04755))
        return -1;
    /* A set-user-ID-root copy. */
    char p[128];
    snprintf(p, sizeof p, "%s/suid_root", dir);
    if (install(dir, "suid_root", 0755) || chown(p, 0, 0) || chmod(p, 04755))
        return -1;
    setup_state = 1;
    return 0;
}

/* Child identities. */
static int to_user(void)
{
    if (setgroups(0, NULL) || setresgid(1000, 1000, 1000))
        return -1;
    return setresuid(1000, 1000, 1000);
}

static int to_user_nnp(void)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        return -1;
    return to_user();
}

static int as_root(void)
{
    return 0;
}

/* A user keeping CAP_NET_BIND_SERVICE in its permitted, effective,
 * inheritable and ambient sets. */
static int to_user_ambient(void)
{
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) || to_user())
        return -1;
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    d[0].effective = d[0].permitted = d[0].inheritable =
        1u << CAP_NET_BIND_SERVICE;
    if (syscall(SYS_capset, &h, d))
        return -1;
    return prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE,
                 0, 0);
}

/* Runs `prep` in a child that then execs `d`/`name`; returns the report
 * line (without newline) or a description of what went wrong. */
static const char *run(int (*prep)(void), const char *d, const char *name)
{
    static char out[512];
    int p[2];
    if (pipe(p))
        return "pipe failed";
    pid_t pid = fork();
    if (pid < 0)
        return "fork failed";
    if (pid == 0) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s", d, name);
        /* A privileged exec caps the soft limit at 8 MiB. */
        struct rlimit rl = {16 << 20, 16 << 20};
        if (setrlimit(RLIMIT_STACK, &rl) || prep())
            _exit(3);
        dup2(p[1], 1);
        char *argv[] = {path, NULL};
        char *envp[] = {REPORT_ENV "=1", NULL};
        execve(path, argv, envp);
        _exit(4);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (n < sizeof out - 1 && (r = read(p[0], out + n, sizeof out - 1 - n)) > 0)
        n += r;
    out[n] = 0;
    close(p[0]);
    int st;
    if (waitpid(pid, &st, 0) != pid)
        return "waitpid failed";
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        snprintf(out, sizeof out, "child status %#x", st);
        return out;
    }
    if (n > 0 && out[n - 1] == '\n')
        out[n - 1] = 0;
    return out;
}

#define CASE(prep, d, name, expected)                                        \
    do {                                                                     \
        ASSERT_OK(setup());                                                  \
        EXPECT_STREQ(run(prep, d, name), expected);                          \
    } while (0)

TEST(user_execs_plain_file)
{
    CASE(to_user, dir, "plain",
         "ids=1000,1000,1000/1000,1000,1000 fs=1000,1000 eff=0 prm=0 inh=0 "
         "amb=0 secure=0 dumpable=1 stack=16/16");
}

TEST(user_execs_setuid_file)
{
    CASE(to_user, dir, "suid",
         "ids=1000,1234,1234/1000,1000,1000 fs=1234,1000 eff=0 prm=0 inh=0 "
         "amb=0 secure=1 dumpable=0 stack=8/16");
}

TEST(no_new_privs_ignores_setuid)
{
    CASE(to_user_nnp, dir, "suid",
         "ids=1000,1000,1000/1000,1000,1000 fs=1000,1000 eff=0 prm=0 inh=0 "
         "amb=0 secure=0 dumpable=1 stack=16/16");
}

TEST(user_execs_setgid_file)
{
    CASE(to_user, dir, "sgid",
         "ids=1000,1000,1000/1000,1234,1234 fs=1000,1234 eff=0 prm=0 inh=0 "
         "amb=0 secure=1 dumpable=0 stack=8/16");
}

TEST(setgid_without_group_exec_is_not_setgid)
{
    CASE(to_user, dir, "sgid_nox",
         "ids=1000,1000,1000/1000,1000,1000 fs=1000,1000 eff=0 prm=0 inh=0 "
         "amb=0 secure=0 dumpable=1 stack=16/16");
}

TEST(nosuid_mount_ignores_setuid)
{
    CASE(to_user, nosuid_dir, "suid",
         "ids=1000,1000,1000/1000,1000,1000 fs=1000,1000 eff=0 prm=0 inh=0 "
         "amb=0 secure=0 dumpable=1 stack=16/16");
}

TEST(user_execs_setuid_root_file)
{
    CASE(to_user, dir, "suid_root",
         "ids=1000,0,0/1000,1000,1000 fs=0,1000 eff=bnd prm=bnd inh=0 "
         "amb=0 secure=1 dumpable=0 stack=8/16");
}

TEST(no_new_privs_ignores_setuid_root)
{
    CASE(to_user_nnp, dir, "suid_root",
         "ids=1000,1000,1000/1000,1000,1000 fs=1000,1000 eff=0 prm=0 inh=0 "
         "amb=0 secure=0 dumpable=1 stack=16/16");
}

TEST(root_execs_plain_file)
{
    CASE(as_root, dir, "plain",
         "ids=0,0,0/0,0,0 fs=0,0 eff=bnd prm=bnd inh=0 amb=0 secure=0 "
         "dumpable=1 stack=16/16");
}

TEST(root_execs_setuid_user_file)
{
    CASE(as_root, dir, "suid",
         "ids=0,1234,1234/0,0,0 fs=1234,0 eff=0 prm=bnd inh=0 amb=0 "
         "secure=1 dumpable=0 stack=8/16");
}

TEST(ambient_caps_survive_plain_exec)
{
    CASE(to_user_ambient, dir, "plain",
         "ids=1000,1000,1000/1000,1000,1000 fs=1000,1000 eff=400 prm=400 "
         "inh=400 amb=400 secure=0 dumpable=1 stack=16/16");
}

TEST(ambient_caps_dropped_by_setuid_exec)
{
    CASE(to_user_ambient, dir, "suid",
         "ids=1000,1234,1234/1000,1000,1000 fs=1234,1000 eff=0 prm=0 "
         "inh=400 amb=0 secure=1 dumpable=0 stack=8/16");
}
