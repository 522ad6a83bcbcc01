/* nop.c - the smallest program: exits 0 at once. forkexec execs it (built
 * static, so the measurement has no dynamic loader in it). */
int main(void)
{
    return 0;
}
