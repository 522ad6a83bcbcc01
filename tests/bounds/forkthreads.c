#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
static pthread_barrier_t b;
static void *worker(void *a) { (void)a; pthread_barrier_wait(&b); return NULL; }
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 200, hold = argc > 2 ? atoi(argv[2]) : 1;
  int pipefd[2]; pipe(pipefd);
  for (int i = 0; i < n; i++) {
    pid_t p = fork();
    if (p == 0) {
      close(pipefd[1]);
      pthread_barrier_init(&b, NULL, 4);
      pthread_t t[3];
      for (int j = 0; j < 3; j++) if (pthread_create(&t[j], NULL, worker, NULL)) _exit(2);
      if (hold) { char c; read(pipefd[0], &c, 1); }  /* all alive at once */
      pthread_barrier_wait(&b);
      for (int j = 0; j < 3; j++) pthread_join(t[j], NULL);
      _exit(0);
    }
    if (p < 0) { perror("fork"); return 1; }
  }
  close(pipefd[1]);
  int ok = 0, st;
  while (wait(&st) > 0) if (WIFEXITED(st) && WEXITSTATUS(st) == 0) ok++;
  printf("%d/%d children with 4 threads exited cleanly\n", ok, n);
  return ok == n ? 0 : 1;
}
