/*
 * churn: process starts at a steady rate, for the agent's memory bounds
 * (bounds.sh). Built with gcc -O1 -o churn churn.c.
 *
 *   churn RATE SECONDS PROGRAM [ARGS...]
 *
 * Starts PROGRAM (fork + execv) RATE times a second for SECONDS, reaping
 * the children as they end, and prints how many it started and how many
 * it could not. It paces by the clock: behind schedule, it starts the
 * late ones at once, never more than RATE * SECONDS in all.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: churn RATE SECONDS PROGRAM [ARGS...]\n");
		return 2;
	}
	double rate = atof(argv[1]), secs = atof(argv[2]);
	long total = (long)(rate * secs), started = 0, failed = 0;
	double t0 = now();

	while (started + failed < total) {
		double due = t0 + (started + failed) / rate, t = now();
		if (t < due) {
			struct timespec d = { (time_t)(due - t), (long)((due - t - (time_t)(due - t)) * 1e9) };
			nanosleep(&d, NULL);
		}
		pid_t pid = fork();
		if (pid == 0) {
			execv(argv[3], argv + 3);
			_exit(127);
		}
		if (pid < 0)
			failed++;
		else
			started++;
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
	while (wait(NULL) > 0 || errno == EINTR)
		;
	printf("started %ld, failed %ld, in %.1f s\n", started, failed, now() - t0);
	return 0;
}
