/*
 * cwork: the C subjects of the eBPF tests, built by the tests with
 * gcc -O1 -fno-omit-frame-pointer. Every mode ends by itself.
 *
 *   cwork spin SECONDS        burn CPU in spin_hot
 *   cwork tcp HOST PORT SECS  blocking request/response, one connection each
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

__attribute__((noinline)) unsigned long spin_hot(double seconds)
{
	double end = now() + seconds;
	unsigned long x = 1;

	for (;;) {
		for (int i = 0; i < 1 << 20; i++)
			x = x * 6364136223846793005UL + 1442695040888963407UL;
		if (now() > end)
			return x;
	}
}

__attribute__((noinline)) int tcp_client(const char *host, int port, double seconds)
{
	double end = now() + seconds;
	static char buf[64 << 10];
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return 1;
	while (now() < end) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		ssize_t n;

		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
			perror("connect");
			return 1;
		}
		if (write(fd, "GET\n", 4) != 4) {
			perror("write");
			return 1;
		}
		while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
			;
		close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "spin") == 0) {
		printf("%lu\n", spin_hot(atof(argv[2])));
		return 0;
	}
	if (argc == 5 && strcmp(argv[1], "tcp") == 0)
		return tcp_client(argv[2], atoi(argv[3]), atof(argv[4]));
	fprintf(stderr, "usage: cwork spin SECONDS | cwork tcp HOST PORT SECONDS\n");
	return 2;
}
