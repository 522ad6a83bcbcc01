/*
 * pty.c - pseudo-terminals and the rest of /dev: posix_openpt/grantpt/
 * unlockpt/ptsname, the replica lock, TIOCGPTN/TIOCGPTPEER, the line
 * discipline (canonical lines, VERASE/VKILL/VEOF, echo, ECHOCTL, ICRNL,
 * ONLCR, raw mode with VMIN/VTIME), window size, FIONREAD, poll, hang-up
 * (EIO on the master, EOF on the replica, SIGHUP to the session leader),
 * controlling terminals (acquiring on open, TIOCSCTTY, /dev/tty, ISIG signals
 * to the foreground group, TIOCSPGRP, SIGTTIN/EIO for background reads), and
 * the /dev/fd, /dev/stdin, /dev/stdout, /dev/stderr links.
 *
 * Children never print and leave with _exit(); they report through their
 * exit status (0: all good, else the number of the failed check).
 */
#include "harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

__attribute__((constructor)) static void ignore_sigpipe(void)
{
    signal(SIGPIPE, SIG_IGN);
}

static int wait_for(pid_t pid)
{
    int st;
    pid_t r;
    do
        r = waitpid(pid, &st, 0);
    while (r < 0 && errno == EINTR);
    return r == pid ? st : -1;
}

/* A new unlocked pty: master in *m, replica (O_NOCTTY) in *r. */
static int open_pair(int *m, int *r)
{
    *m = posix_openpt(O_RDWR | O_NOCTTY);
    if (*m < 0)
        return -1;
    if (grantpt(*m) || unlockpt(*m))
        return -1;
    char *name = ptsname(*m);
    if (!name)
        return -1;
    *r = open(name, O_RDWR | O_NOCTTY);
    return *r < 0 ? -1 : 0;
}

/* Reads what the master has (waiting up to 2 s for the first bytes, then
 * until it stays quiet for 100 ms), NUL-terminated. */
static ssize_t drain(int m, char *buf, size_t cap)
{
    struct pollfd p = {m, POLLIN, 0};
    size_t n = 0;
    while (n + 1 < cap && poll(&p, 1, n ? 100 : 2000) == 1 && (p.revents & POLLIN)) {
        ssize_t k = read(m, buf + n, cap - 1 - n);
        if (k <= 0)
            break;
        n += k;
    }
    buf[n] = 0;
    return n;
}

static void set_lflag(int fd, tcflag_t on, tcflag_t off)
{
    struct termios t;
    tcgetattr(fd, &t);
    t.c_lflag = (t.c_lflag | on) & ~off;
    tcsetattr(fd, TCSANOW, &t);
}

/* ------------------------------------------------------------ allocation */

TEST(openpt_ptsname_grantpt_unlockpt)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    ASSERT_GE(m, 0);
    EXPECT_EQ(grantpt(m), 0);
    EXPECT_EQ(unlockpt(m), 0);
    char *name = ptsname(m);
    ASSERT_TRUE(name != NULL);
    EXPECT_EQ(strncmp(name, "/dev/pts/", 9), 0);
    unsigned int n = 12345;
    EXPECT_OK(ioctl(m, TIOCGPTN, &n));
    char want[64];
    snprintf(want, sizeof want, "/dev/pts/%u", n);
    EXPECT_STREQ(name, want);
    struct stat st;
    EXPECT_OK(stat(name, &st));
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    EXPECT_EQ(major(st.st_rdev), 136);
    EXPECT_EQ(minor(st.st_rdev), n);
    EXPECT_EQ(st.st_uid, geteuid());
    int r = open(name, O_RDWR | O_NOCTTY);
    ASSERT_GE(r, 0);
    EXPECT_TRUE(isatty(m));
    EXPECT_TRUE(isatty(r));
    struct stat rs;
    EXPECT_OK(fstat(r, &rs));
    EXPECT_EQ(rs.st_rdev, st.st_rdev);
    struct stat ms;
    EXPECT_OK(fstat(m, &ms));
    EXPECT_TRUE(S_ISCHR(ms.st_mode));
    EXPECT_EQ(major(ms.st_rdev), 5);
    EXPECT_EQ(minor(ms.st_rdev), 2);
    char tn[64];
    EXPECT_EQ(ttyname_r(r, tn, sizeof tn), 0);
    EXPECT_STREQ(tn, name);
    close(r);
    close(m);
}

TEST(replica_locked_until_unlockpt)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    ASSERT_GE(m, 0);
    char name[64];
    ASSERT_EQ(ptsname_r(m, name, sizeof name), 0);
    EXPECT_ERRNO(open(name, O_RDWR | O_NOCTTY), EIO);
    int lock = 0;
    EXPECT_OK(ioctl(m, TIOCGPTLCK, &lock));
    EXPECT_EQ(lock, 1);
    EXPECT_EQ(unlockpt(m), 0);
    EXPECT_OK(ioctl(m, TIOCGPTLCK, &lock));
    EXPECT_EQ(lock, 0);
    int r = open(name, O_RDWR | O_NOCTTY);
    EXPECT_GE(r, 0);
    close(r);
    close(m);
}

TEST(pts_dir_lists_and_forgets)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    char name[64];
    ASSERT_EQ(ptsname_r(m, name, sizeof name), 0);
    struct stat st;
    EXPECT_OK(stat("/dev/pts", &st));
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_OK(stat("/dev/ptmx", &st));
    EXPECT_TRUE(S_ISCHR(st.st_mode));
    close(r);
    close(m);
    EXPECT_ERRNO(stat(name, &st), ENOENT);
}

TEST(tiocgptpeer)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    ASSERT_GE(m, 0);
    ASSERT_EQ(unlockpt(m), 0);
    int r = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
    ASSERT_GE(r, 0);
    EXPECT_TRUE(isatty(r));
    EXPECT_ERRNO(ioctl(r, TIOCGPTPEER, O_RDWR), EIO);
    int p[2];
    ASSERT_OK(pipe(p));
    EXPECT_ERRNO(ioctl(p[0], TIOCGPTPEER, O_RDWR), ENOTTY);
    close(p[0]);
    close(p[1]);
    EXPECT_EQ(write(r, "p", 1), 1);
    char b[8];
    EXPECT_EQ(read(m, b, sizeof b), 1);
    EXPECT_EQ(b[0], 'p');
    close(r);
    close(m);
}

TEST(replica_and_master_ioctl_errors)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    unsigned int n;
    int x = 0;
    EXPECT_ERRNO(ioctl(r, TIOCGPTN, &n), ENOTTY);
    EXPECT_ERRNO(ioctl(r, TIOCSPTLCK, &x), ENOTTY);
    /* Neither is our controlling terminal. */
    EXPECT_ERRNO(ioctl(r, TIOCGPGRP, &x), ENOTTY);
    EXPECT_ERRNO(ioctl(r, TIOCGSID, &x), ENOTTY);
    EXPECT_ERRNO(ioctl(r, TIOCNOTTY, 0), ENOTTY);
    EXPECT_ERRNO(ioctl(m, TIOCSPGRP, &x), ENOTTY);
    EXPECT_ERRNO(ioctl(m, TIOCGSID, &x), ENOTTY);
    x = -1;
    EXPECT_OK(ioctl(m, TIOCGPGRP, &x));
    EXPECT_EQ(x, 0);
    EXPECT_ERRNO(ioctl(r, TCXONC, 9), EINVAL);
    EXPECT_OK(ioctl(m, TIOCGETD, &x));
    EXPECT_EQ(x, 0);
    x = 5;
    EXPECT_ERRNO(ioctl(r, TIOCSETD, &x), EINVAL);
    /* The master's termios ioctls act on the replica. */
    struct termios t;
    ASSERT_OK(tcgetattr(m, &t));
    EXPECT_EQ(t.c_lflag & ICANON, ICANON);
    t.c_lflag &= ~ICANON;
    ASSERT_OK(tcsetattr(m, TCSANOW, &t));
    ASSERT_OK(tcgetattr(r, &t));
    EXPECT_EQ(t.c_lflag & ICANON, 0);
    close(r);
    close(m);
}

TEST(hung_up_replica_ioctls)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    close(m);
    struct termios t;
    EXPECT_ERRNO(tcgetattr(r, &t), EIO);
    struct winsize w;
    EXPECT_ERRNO(ioctl(r, TIOCGWINSZ, &w), EIO);
    int x = 0;
    EXPECT_ERRNO(ioctl(r, TIOCSPGRP, &x), ENOTTY);
    close(r);
}

TEST(tiocsti_as_root)
{
    if (geteuid() != 0)
        SKIP("needs CAP_SYS_ADMIN for a terminal that is not ours");
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    set_lflag(r, 0, ECHO);
    char c = 'i';
    if (ioctl(r, TIOCSTI, &c) != 0 && errno == EIO)
        SKIP("TIOCSTI disabled (dev.tty.legacy_tiocsti)");
    c = '\n';
    EXPECT_OK(ioctl(r, TIOCSTI, &c));
    char b[8];
    EXPECT_EQ(read(r, b, sizeof b), 2);
    EXPECT_MEMEQ(b, "i\n", 2);
    close(r);
    close(m);
}

TEST(not_a_tty)
{
    int p[2];
    ASSERT_OK(pipe(p));
    struct termios t;
    EXPECT_ERRNO(tcgetattr(p[0], &t), ENOTTY);
    EXPECT_FALSE(isatty(p[0]));
    close(p[0]);
    close(p[1]);
}

/* ------------------------------------------------------------ termios */

TEST(default_termios)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    struct termios t;
    ASSERT_OK(tcgetattr(r, &t));
    EXPECT_EQ(t.c_iflag, ICRNL | IXON);
    EXPECT_EQ(t.c_oflag, OPOST | ONLCR);
    EXPECT_EQ(t.c_lflag, ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN);
    EXPECT_EQ(t.c_cflag & CSIZE, CS8);
    EXPECT_EQ(cfgetospeed(&t), B38400);
    EXPECT_EQ(t.c_cc[VINTR], 3);
    EXPECT_EQ(t.c_cc[VERASE], 0177);
    EXPECT_EQ(t.c_cc[VKILL], 025);
    EXPECT_EQ(t.c_cc[VEOF], 4);
    EXPECT_EQ(t.c_cc[VMIN], 1);
    EXPECT_EQ(t.c_cc[VTIME], 0);
    t.c_lflag &= ~ECHO;
    ASSERT_OK(tcsetattr(r, TCSANOW, &t));
    struct termios u;
    ASSERT_OK(tcgetattr(r, &u));
    EXPECT_EQ(u.c_lflag & ECHO, 0);
    close(r);
    close(m);
}

/* ------------------------------------------------------------ canonical */

TEST(canonical_line_and_echo)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    EXPECT_EQ(write(m, "hel", 3), 3);
    int n = -1;
    EXPECT_OK(ioctl(r, FIONREAD, &n));
    EXPECT_EQ(n, 0);
    struct pollfd p = {r, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 0), 0);
    EXPECT_EQ(write(m, "lo\n", 3), 3);
    EXPECT_EQ(poll(&p, 1, 1000), 1);
    EXPECT_OK(ioctl(r, FIONREAD, &n));
    EXPECT_EQ(n, 6);
    char b[64];
    ssize_t k = read(r, b, sizeof b);
    EXPECT_EQ(k, 6);
    EXPECT_MEMEQ(b, "hello\n", 6);
    drain(m, b, sizeof b);
    EXPECT_STREQ(b, "hello\r\n");
    close(r);
    close(m);
}

TEST(canonical_one_line_per_read)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    set_lflag(r, 0, ECHO);
    EXPECT_EQ(write(m, "ab\ncd\n", 6), 6);
    char b[64];
    EXPECT_EQ(read(r, b, sizeof b), 3);
    EXPECT_MEMEQ(b, "ab\n", 3);
    /* A short read leaves the rest of the line. */
    EXPECT_EQ(read(r, b, 1), 1);
    EXPECT_EQ(b[0], 'c');
    EXPECT_EQ(read(r, b, sizeof b), 2);
    EXPECT_MEMEQ(b, "d\n", 2);
    close(r);
    close(m);
}

TEST(canonical_erase_kill_werase)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    char b[128];
    EXPECT_EQ(write(m, "abx\177c\n", 6), 6);
    EXPECT_EQ(read(r, b, sizeof b), 4);
    EXPECT_MEMEQ(b, "abc\n", 4);
    drain(m, b, sizeof b);
    EXPECT_STREQ(b, "abx\b \bc\r\n");
    EXPECT_EQ(write(m, "foo\025bar\n", 8), 8);
    EXPECT_EQ(read(r, b, sizeof b), 4);
    EXPECT_MEMEQ(b, "bar\n", 4);
    drain(m, b, sizeof b);
    EXPECT_STREQ(b, "foo\b \b\b \b\b \bbar\r\n");
    EXPECT_EQ(write(m, "one two\027x\n", 10), 10);
    EXPECT_EQ(read(r, b, sizeof b), 6);
    EXPECT_MEMEQ(b, "one x\n", 6);
    close(r);
    close(m);
}

TEST(utf8_erase_and_xtabs)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    struct termios t;
    tcgetattr(r, &t);
    t.c_iflag |= IUTF8;
    t.c_oflag |= XTABS;
    tcsetattr(r, TCSANOW, &t);
    char b[128];
    /* "a" + U+00E9 (2 bytes), erased as one character. */
    EXPECT_EQ(write(m, "a\xc3\xa9\177b\n", 6), 6);
    EXPECT_EQ(read(r, b, sizeof b), 3);
    EXPECT_MEMEQ(b, "ab\n", 3);
    drain(m, b, sizeof b);
    EXPECT_STREQ(b, "a\xc3\xa9\b \bb\r\n");
    EXPECT_EQ(write(r, "ab\tc\n\td\n\xc3\xa9\tx", 13), 13);
    drain(m, b, sizeof b);
    EXPECT_STREQ(b, "ab      c\r\n        d\r\n\xc3\xa9       x");
    close(r);
    close(m);
}

TEST(canonical_eof)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    char b[64];
    EXPECT_EQ(write(m, "ab\004", 3), 3);
    EXPECT_EQ(read(r, b, sizeof b), 2);
    EXPECT_MEMEQ(b, "ab", 2);
    EXPECT_EQ(write(m, "\004", 1), 1);
    EXPECT_EQ(read(r, b, sizeof b), 0);
    drain(m, b, sizeof b);
    EXPECT_STREQ(b, "ab");
    close(r);
    close(m);
}

TEST(echoctl)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    char b[64];
    EXPECT_EQ(write(m, "a\001\n", 3), 3);
    EXPECT_EQ(read(r, b, sizeof b), 3);
    EXPECT_MEMEQ(b, "a\001\n", 3);
    drain(m, b, sizeof b);
    EXPECT_STREQ(b, "a^A\r\n");
    close(r);
    close(m);
}

TEST(echonl_without_echo)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    set_lflag(r, ECHONL, ECHO);
    char b[64];
    EXPECT_EQ(write(m, "secret\n", 7), 7);
    EXPECT_EQ(read(r, b, sizeof b), 7);
    drain(m, b, sizeof b);
    EXPECT_STREQ(b, "\r\n");
    close(r);
    close(m);
}

TEST(input_cr_translation)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    set_lflag(r, 0, ECHO);
    char b[64];
    EXPECT_EQ(write(m, "hi\r", 3), 3);
    EXPECT_EQ(read(r, b, sizeof b), 3);
    EXPECT_MEMEQ(b, "hi\n", 3);
    struct termios t;
    tcgetattr(r, &t);
    t.c_iflag = (t.c_iflag & ~ICRNL) | IGNCR;
    tcsetattr(r, TCSANOW, &t);
    EXPECT_EQ(write(m, "x\ry\n", 4), 4);
    EXPECT_EQ(read(r, b, sizeof b), 3);
    EXPECT_MEMEQ(b, "xy\n", 3);
    t.c_iflag = (t.c_iflag & ~IGNCR) | INLCR;
    t.c_lflag &= ~ICANON;
    tcsetattr(r, TCSANOW, &t);
    EXPECT_EQ(write(m, "\n", 1), 1);
    EXPECT_EQ(read(r, b, sizeof b), 1);
    EXPECT_EQ(b[0], '\r');
    close(r);
    close(m);
}

TEST(output_onlcr)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    char b[64];
    EXPECT_EQ(write(r, "a\nb", 3), 3);
    drain(m, b, sizeof b);
    EXPECT_STREQ(b, "a\r\nb");
    struct termios t;
    tcgetattr(r, &t);
    t.c_oflag &= ~OPOST;
    tcsetattr(r, TCSANOW, &t);
    EXPECT_EQ(write(r, "c\n", 2), 2);
    drain(m, b, sizeof b);
    EXPECT_STREQ(b, "c\n");
    close(r);
    close(m);
}

/* ------------------------------------------------------------ raw mode */

TEST(raw_vmin1)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    struct termios t;
    tcgetattr(r, &t);
    cfmakeraw(&t);
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    ASSERT_OK(tcsetattr(r, TCSANOW, &t));
    char b[64];
    EXPECT_EQ(write(m, "x\003\r", 3), 3);
    EXPECT_EQ(read(r, b, sizeof b), 3);
    EXPECT_MEMEQ(b, "x\003\r", 3);
    /* No echo. */
    fcntl(m, F_SETFL, O_NONBLOCK);
    EXPECT_ERRNO(read(m, b, sizeof b), EAGAIN);
    close(r);
    close(m);
}

TEST(raw_vmin0_vtime0_polls)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    struct termios t;
    tcgetattr(r, &t);
    t.c_lflag &= ~(ICANON | ECHO);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    ASSERT_OK(tcsetattr(r, TCSANOW, &t));
    char b[8];
    EXPECT_EQ(read(r, b, sizeof b), 0);
    EXPECT_EQ(write(m, "q", 1), 1);
    EXPECT_EQ(read(r, b, sizeof b), 1);
    close(r);
    close(m);
}

TEST(canonical_to_raw_keeps_partial_line)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    set_lflag(r, 0, ECHO);
    EXPECT_EQ(write(m, "par", 3), 3);
    set_lflag(r, 0, ICANON);
    char b[8];
    EXPECT_EQ(read(r, b, sizeof b), 3);
    EXPECT_MEMEQ(b, "par", 3);
    close(r);
    close(m);
}

TEST(raw_to_canonical_keeps_pending_input_readable)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    set_lflag(r, 0, ECHO | ICANON);
    EXPECT_EQ(write(m, "pen", 3), 3);
    struct pollfd p = {r, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 1000), 1);
    set_lflag(r, ICANON, 0);
    char b[8];
    EXPECT_EQ(read(r, b, sizeof b), 3);
    EXPECT_MEMEQ(b, "pen", 3);
    EXPECT_EQ(write(m, "x\n", 2), 2);
    EXPECT_EQ(read(r, b, sizeof b), 2);
    close(r);
    close(m);
}

TEST(ixon_stops_output)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    fcntl(r, F_SETFL, O_NONBLOCK);
    EXPECT_EQ(write(m, "\023", 1), 1);
    struct pollfd p = {r, POLLOUT, 0};
    for (int i = 0; i < 100 && poll(&p, 1, 0) == 1; i++)
        usleep(10000);
    EXPECT_EQ(poll(&p, 1, 0), 0);
    EXPECT_ERRNO(write(r, "s", 1), EAGAIN);
    EXPECT_EQ(write(m, "\021", 1), 1);
    EXPECT_EQ(poll(&p, 1, 2000), 1);
    EXPECT_EQ(write(r, "s", 1), 1);
    EXPECT_OK(tcflow(r, TCOOFF));
    EXPECT_ERRNO(write(r, "s", 1), EAGAIN);
    EXPECT_OK(tcflow(r, TCOON));
    EXPECT_EQ(write(r, "t", 1), 1);
    char b[16];
    drain(m, b, sizeof b);
    EXPECT_STREQ(b, "st");
    /* Neither control character reached the input. */
    int n = -1;
    set_lflag(r, 0, ICANON);
    EXPECT_OK(ioctl(r, FIONREAD, &n));
    EXPECT_EQ(n, 0);
    close(r);
    close(m);
}

TEST(nonblocking_replica_read)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    fcntl(r, F_SETFL, O_NONBLOCK);
    char b[8];
    EXPECT_ERRNO(read(r, b, sizeof b), EAGAIN);
    close(r);
    close(m);
}

TEST(tcflush)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    set_lflag(r, 0, ECHO);
    EXPECT_EQ(write(m, "gone\n", 5), 5);
    EXPECT_OK(tcflush(r, TCIFLUSH));
    int n = -1;
    EXPECT_OK(ioctl(r, FIONREAD, &n));
    EXPECT_EQ(n, 0);
    EXPECT_ERRNO(ioctl(r, TCFLSH, 7), EINVAL);
    EXPECT_OK(ioctl(r, TCXONC, TCOON));
    EXPECT_ERRNO(ioctl(r, TCXONC, 4), EINVAL);
    EXPECT_EQ(write(r, "out", 3), 3);
    EXPECT_OK(ioctl(r, TIOCOUTQ, &n));
    struct pollfd p = {m, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 1000), 1);
    EXPECT_OK(ioctl(m, FIONREAD, &n));
    EXPECT_EQ(n, 3);
    close(r);
    close(m);
}

/* ------------------------------------------------------------ window size */

TEST(window_size)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    struct winsize w = {0};
    EXPECT_OK(ioctl(r, TIOCGWINSZ, &w));
    EXPECT_EQ(w.ws_row, 0);
    EXPECT_EQ(w.ws_col, 0);
    struct winsize s = {.ws_row = 24, .ws_col = 80, .ws_xpixel = 1, .ws_ypixel = 2};
    EXPECT_OK(ioctl(m, TIOCSWINSZ, &s));
    EXPECT_OK(ioctl(r, TIOCGWINSZ, &w));
    EXPECT_EQ(w.ws_row, 24);
    EXPECT_EQ(w.ws_col, 80);
    EXPECT_EQ(w.ws_xpixel, 1);
    EXPECT_EQ(w.ws_ypixel, 2);
    EXPECT_OK(ioctl(m, TIOCGWINSZ, &w));
    EXPECT_EQ(w.ws_col, 80);
    EXPECT_ERRNO(ioctl(r, TIOCGWINSZ, (void *)8), EFAULT);
    close(r);
    close(m);
}

/* ------------------------------------------------------------ hang-up */

TEST(master_read_eio_after_replica_close)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    EXPECT_EQ(write(r, "z", 1), 1);
    close(r);
    char b[8];
    /* Buffered output is still read, then EIO. */
    EXPECT_EQ(read(m, b, sizeof b), 1);
    EXPECT_ERRNO(read(m, b, sizeof b), EIO);
    struct pollfd p = {m, POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 0), 1);
    EXPECT_TRUE(p.revents & POLLHUP);
    close(m);
}

TEST(replica_after_master_close)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    close(m);
    char b[8];
    EXPECT_EQ(read(r, b, sizeof b), 0);
    EXPECT_ERRNO(write(r, "x", 1), EIO);
    struct pollfd p = {r, POLLIN | POLLOUT, 0};
    EXPECT_EQ(poll(&p, 1, 0), 1);
    EXPECT_TRUE(p.revents & POLLHUP);
    close(r);
}

/* ------------------------------------------------------------ job control */

static volatile sig_atomic_t got_sig;
static void on_sig(int s)
{
    got_sig = s;
}

/* Waits up to ~2 s for got_sig. */
static int await_sig(void)
{
    for (int i = 0; i < 200 && !got_sig; i++)
        usleep(10000);
    return got_sig;
}

TEST(dev_tty_and_ctty)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    ASSERT_GE(m, 0);
    ASSERT_EQ(unlockpt(m), 0);
    char name[64];
    ASSERT_EQ(ptsname_r(m, name, sizeof name), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (setsid() < 0)
            _exit(1);
        if (open("/dev/tty", O_RDWR) != -1 || errno != ENXIO)
            _exit(2);
        int r = open(name, O_RDWR | O_NOCTTY);
        if (r < 0)
            _exit(3);
        if (open("/dev/tty", O_RDWR) != -1 || errno != ENXIO)
            _exit(4);
        if (tcgetpgrp(r) != -1 || errno != ENOTTY)
            _exit(5);
        if (ioctl(r, TIOCSCTTY, 0) != 0)
            _exit(6);
        if (tcgetpgrp(r) != getpid() || tcgetsid(r) != getpid())
            _exit(7);
        /* Already ours: TIOCSCTTY again succeeds. */
        if (ioctl(r, TIOCSCTTY, 0) != 0)
            _exit(8);
        int t = open("/dev/tty", O_RDWR);
        if (t < 0)
            _exit(9);
        if (write(t, "T\n", 2) != 2)
            _exit(10);
        if (!isatty(t))
            _exit(11);
        _exit(0);
    }
    int st = wait_for(pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    char b[64];
    drain(m, b, sizeof b);
    EXPECT_STREQ(b, "T\r\n");
    close(m);
}

TEST(open_acquires_ctty_for_session_leader)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    ASSERT_GE(m, 0);
    ASSERT_EQ(unlockpt(m), 0);
    char name[64];
    ASSERT_EQ(ptsname_r(m, name, sizeof name), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (setsid() < 0)
            _exit(1);
        int r = open(name, O_RDWR);
        if (r < 0)
            _exit(2);
        if (tcgetsid(r) != getpid())
            _exit(3);
        /* A second session cannot take it. */
        pid_t c = fork();
        if (c == 0) {
            setsid();
            _exit(ioctl(r, TIOCSCTTY, 0) == -1 && errno == EPERM ? 0 : 1);
        }
        if (wait_for(c) != 0)
            _exit(4);
        /* A non-leader cannot take one either. */
        _exit(0);
    }
    int st = wait_for(pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    close(m);
}

TEST(vintr_signals_foreground_group)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    ASSERT_GE(m, 0);
    ASSERT_EQ(unlockpt(m), 0);
    char name[64];
    ASSERT_EQ(ptsname_r(m, name, sizeof name), 0);
    int ready[2];
    ASSERT_OK(pipe(ready));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(ready[0]);
        signal(SIGINT, on_sig);
        signal(SIGWINCH, on_sig);
        if (setsid() < 0)
            _exit(1);
        int r = open(name, O_RDWR | O_NOCTTY);
        if (r < 0 || ioctl(r, TIOCSCTTY, 0) != 0)
            _exit(2);
        write(ready[1], "r", 1);
        if (await_sig() != SIGINT)
            _exit(3);
        got_sig = 0;
        write(ready[1], "s", 1);
        if (await_sig() != SIGWINCH)
            _exit(4);
        _exit(0);
    }
    close(ready[1]);
    char c;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    EXPECT_EQ(write(m, "\003", 1), 1);
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    struct winsize w = {.ws_row = 10, .ws_col = 20};
    EXPECT_OK(ioctl(m, TIOCSWINSZ, &w));
    int st = wait_for(pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    char b[64];
    drain(m, b, sizeof b);
    EXPECT_STREQ(b, "^C");
    close(ready[0]);
    close(m);
}

TEST(tcsetpgrp_and_background_read)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    ASSERT_GE(m, 0);
    ASSERT_EQ(unlockpt(m), 0);
    char name[64];
    ASSERT_EQ(ptsname_r(m, name, sizeof name), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (setsid() < 0)
            _exit(1);
        int r = open(name, O_RDWR);
        if (r < 0)
            _exit(2);
        signal(SIGTTOU, SIG_IGN);
        int go[2];
        pipe(go);
        pid_t c = fork();
        if (c == 0) {
            setpgid(0, 0);
            char x;
            read(go[0], &x, 1);
            /* In the background, SIGTTIN ignored: EIO. */
            signal(SIGTTIN, SIG_IGN);
            char b[4];
            _exit(read(r, b, sizeof b) == -1 && errno == EIO ? 0 : 1);
        }
        setpgid(c, c);
        if (tcsetpgrp(r, c) != 0)
            _exit(3);
        if (tcgetpgrp(r) != c)
            _exit(4);
        if (tcsetpgrp(r, getpid()) != 0)
            _exit(5);
        if (tcsetpgrp(r, 999999) != -1 || errno != ESRCH)
            _exit(6);
        write(go[1], "g", 1);
        int st = wait_for(c);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            _exit(7);
        _exit(0);
    }
    int st = wait_for(pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    close(m);
}

/* In a session on a new pty, runs `what` in a background group child and
 * returns how the child ended or stopped (waitpid with WUNTRACED). */
static int background_child(const char *name, int what)
{
    int r = open(name, O_RDWR);
    if (r < 0)
        return -1;
    struct termios t;
    tcgetattr(r, &t);
    t.c_lflag |= TOSTOP;
    tcsetattr(r, TCSANOW, &t);
    pid_t c = fork();
    if (c == 0) {
        setpgid(0, 0);
        char b[4];
        switch (what) {
        case 0:
            read(r, b, sizeof b);
            break;
        case 1:
            write(r, "w", 1);
            break;
        case 2:
            tcsetattr(r, TCSANOW, &t);
            break;
        case 3:
            /* SIGTTOU ignored: changes and writes go through. */
            signal(SIGTTOU, SIG_IGN);
            if (tcsetattr(r, TCSANOW, &t) != 0 || write(r, "w", 1) != 1)
                _exit(1);
            break;
        }
        _exit(0);
    }
    setpgid(c, c);
    int st;
    while (waitpid(c, &st, WUNTRACED) < 0 && errno == EINTR)
        ;
    if (WIFSTOPPED(st)) {
        kill(c, SIGKILL);
        waitpid(c, NULL, 0);
    }
    close(r);
    return st;
}

TEST(background_job_control_stops)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    ASSERT_GE(m, 0);
    ASSERT_EQ(unlockpt(m), 0);
    char name[64];
    ASSERT_EQ(ptsname_r(m, name, sizeof name), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (setsid() < 0)
            _exit(1);
        int st = background_child(name, 0);
        if (!WIFSTOPPED(st) || WSTOPSIG(st) != SIGTTIN)
            _exit(2);
        st = background_child(name, 1);
        if (!WIFSTOPPED(st) || WSTOPSIG(st) != SIGTTOU)
            _exit(3);
        st = background_child(name, 2);
        if (!WIFSTOPPED(st) || WSTOPSIG(st) != SIGTTOU)
            _exit(4);
        st = background_child(name, 3);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            _exit(5);
        _exit(0);
    }
    int st = wait_for(pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    close(m);
}

TEST(raw_vtime_times_out)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    struct termios t;
    tcgetattr(r, &t);
    t.c_lflag &= ~(ICANON | ECHO);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 1;
    ASSERT_OK(tcsetattr(r, TCSANOW, &t));
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    char buf[8];
    EXPECT_EQ(read(r, buf, sizeof buf), 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    EXPECT_GE(ms, 80);
    EXPECT_LT(ms, 2000);
    EXPECT_EQ(write(m, "v", 1), 1);
    EXPECT_EQ(read(r, buf, sizeof buf), 1);
    close(r);
    close(m);
}

TEST(master_close_hangs_up_session)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    ASSERT_GE(m, 0);
    ASSERT_EQ(unlockpt(m), 0);
    char name[64];
    ASSERT_EQ(ptsname_r(m, name, sizeof name), 0);
    int ready[2];
    ASSERT_OK(pipe(ready));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(ready[0]);
        close(m);
        signal(SIGHUP, on_sig);
        if (setsid() < 0)
            _exit(1);
        int r = open(name, O_RDWR);
        if (r < 0)
            _exit(2);
        write(ready[1], "r", 1);
        if (await_sig() != SIGHUP)
            _exit(3);
        char b[4];
        if (read(r, b, sizeof b) != 0)
            _exit(4);
        _exit(0);
    }
    close(ready[1]);
    char c;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    close(m);
    int st = wait_for(pid);
    EXPECT_TRUE(WIFEXITED(st));
    EXPECT_EQ(WEXITSTATUS(st), 0);
    close(ready[0]);
}

static int hup_fd = -1;
static void on_hup_report(int s)
{
    (void)s;
    write(hup_fd, "h", 1);
    _exit(0);
}

/* The master closes while a job is in the foreground: the session leader gets
 * SIGHUP and dies of it, and then its foreground job gets SIGHUP too. */
TEST(hangup_reaches_foreground_job_after_leader_exits)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    ASSERT_GE(m, 0);
    ASSERT_EQ(unlockpt(m), 0);
    char name[64];
    ASSERT_EQ(ptsname_r(m, name, sizeof name), 0);
    int ready[2], hup[2];
    ASSERT_OK(pipe(ready));
    ASSERT_OK(pipe(hup));
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(m);
        close(ready[0]);
        close(hup[0]);
        if (setsid() < 0)
            _exit(1);
        int r = open(name, O_RDWR);
        if (r < 0)
            _exit(2);
        signal(SIGTTOU, SIG_IGN);
        int go[2];
        pipe(go);
        pid_t c = fork();
        if (c == 0) {
            hup_fd = hup[1];
            signal(SIGHUP, on_hup_report);
            setpgid(0, 0);
            write(go[1], "g", 1);
            for (;;)
                pause();
        }
        char x;
        read(go[0], &x, 1);
        setpgid(c, c);
        if (tcsetpgrp(r, c) != 0)
            _exit(3);
        write(ready[1], "r", 1);
        for (;;)
            pause();
    }
    close(ready[1]);
    close(hup[1]);
    char c;
    ASSERT_EQ(read(ready[0], &c, 1), 1);
    close(m);
    int st = wait_for(pid);
    EXPECT_TRUE(WIFSIGNALED(st));
    EXPECT_EQ(WTERMSIG(st), SIGHUP);
    struct pollfd p = {hup[0], POLLIN, 0};
    EXPECT_EQ(poll(&p, 1, 5000), 1);
    EXPECT_EQ(read(hup[0], &c, 1), 1);
    close(ready[0]);
    close(hup[0]);
}

/* ------------------------------------------------------------ /dev links */

TEST(dev_fd_links)
{
    char b[64];
    ssize_t n = readlink("/dev/fd", b, sizeof b - 1);
    ASSERT_GT(n, 0);
    b[n] = 0;
    EXPECT_STREQ(b, "/proc/self/fd");
    n = readlink("/dev/stdin", b, sizeof b - 1);
    ASSERT_GT(n, 0);
    b[n] = 0;
    EXPECT_STREQ(b, "/proc/self/fd/0");
    n = readlink("/dev/stdout", b, sizeof b - 1);
    ASSERT_GT(n, 0);
    b[n] = 0;
    EXPECT_STREQ(b, "/proc/self/fd/1");
    n = readlink("/dev/stderr", b, sizeof b - 1);
    ASSERT_GT(n, 0);
    b[n] = 0;
    EXPECT_STREQ(b, "/proc/self/fd/2");
    struct stat st, fst;
    EXPECT_OK(stat("/dev/stdout", &st));
    EXPECT_OK(fstat(1, &fst));
    EXPECT_EQ(st.st_ino, fst.st_ino);
    EXPECT_EQ(st.st_mode, fst.st_mode);
}

TEST(dev_fd_reopens_pipe)
{
    int p[2];
    ASSERT_OK(pipe(p));
    EXPECT_EQ(write(p[1], "zq", 2), 2);
    char path[64];
    snprintf(path, sizeof path, "/dev/fd/%d", p[0]);
    int f = open(path, O_RDONLY);
    ASSERT_GE(f, 0);
    EXPECT_NE(f, p[0]);
    char b[4];
    EXPECT_EQ(read(f, b, 1), 1);
    EXPECT_EQ(b[0], 'z');
    EXPECT_EQ(read(p[0], b, 1), 1);
    EXPECT_EQ(b[0], 'q');
    close(f);
    close(p[0]);
    close(p[1]);
}

TEST(dev_fd_reopens_pty)
{
    int m, r;
    ASSERT_OK(open_pair(&m, &r));
    char path[64];
    snprintf(path, sizeof path, "/dev/fd/%d", r);
    int f = open(path, O_RDWR | O_NOCTTY);
    ASSERT_GE(f, 0);
    EXPECT_TRUE(isatty(f));
    EXPECT_EQ(write(f, "k", 1), 1);
    char b[8];
    EXPECT_EQ(read(m, b, sizeof b), 1);
    close(f);
    close(r);
    close(m);
}

