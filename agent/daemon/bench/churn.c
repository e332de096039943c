/*
 * churn: process starts at a steady rate, for the agent's memory bounds
 * (bounds.sh). Built with gcc -O1 -o churn churn.c.
 *
 *   churn RATE SECONDS PROGRAM [ARGS...]
 *
 * Starts PROGRAM (posix_spawn: vfork + exec) RATE times a second for
 * SECONDS, reaping the children as they end, and prints how many it
 * started and how many it could not. It paces by the clock: behind
 * schedule, it starts the late ones at once; it stops at SECONDS even if
 * the machine could not keep up (the rate reached is printed).
 */
#include <errno.h>
#include <spawn.h>
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

extern char **environ;

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: churn RATE SECONDS PROGRAM [ARGS...]\n");
		return 2;
	}
	double rate = atof(argv[1]), secs = atof(argv[2]);
	long total = (long)(rate * secs), started = 0, failed = 0;
	double t0 = now();

	while (started + failed < total && now() < t0 + secs) {
		double due = t0 + (started + failed) / rate, t = now();
		if (t < due) {
			struct timespec d = { (time_t)(due - t), (long)((due - t - (time_t)(due - t)) * 1e9) };
			nanosleep(&d, NULL);
		}
		pid_t pid;
		if (posix_spawn(&pid, argv[3], NULL, NULL, argv + 3, environ) != 0)
			failed++;
		else
			started++;
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
	while (wait(NULL) > 0 || errno == EINTR)
		;
	double took = now() - t0;
	printf("started %ld (%.0f a second), failed %ld, in %.1f s\n", started, started / took, failed, took);
	return 0;
}
