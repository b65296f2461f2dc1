/*
 * policy_load.c - load generator for tlsgate's Postfix policy service, as
 * smtpd processes would load it: CONNECTIONS kept connections, each a
 * thread sending one request at a time for SECONDS, and every answer
 * compared with the one expected.
 *
 *   policy_load [-c CONNECTIONS] [-d SECONDS] SOCKET REQUEST EXPECTED
 *
 * REQUEST is a file holding one request (its lines, without the empty
 * line); EXPECTED the action it must get ("DUNNO").  Prints requests,
 * errors, the rate and the latency's p50, p99 and maximum; exits 1 when
 * any request failed or got another answer.
 *
 * SPDX-License-Identifier: BSD-2-Clause
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "policy_client.h"

struct worker {
	pthread_t thread;
	const char *socket;
	const char *request;
	char expected[256];
	double deadline;
	double *latencies;
	size_t count, capacity;
	unsigned long errors;
	char first_error[256];
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One answer, through its empty line; the server answers one at a time. */
static long
read_answer(int fd, char *buf, size_t size)
{
	size_t len = 0;

	while (len + 1 < size) {
		ssize_t n = recv(fd, buf + len, size - 1 - len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		len += (size_t)n;
		buf[len] = '\0';
		if (len >= 2 && strcmp(buf + len - 2, "\n\n") == 0)
			return (long)len;
	}
	return -1;
}

static void
fail(struct worker *w, const char *what)
{
	if (w->errors++ == 0)
		snprintf(w->first_error, sizeof(w->first_error), "%.200s", what);
}

static void *
run(void *arg)
{
	struct worker *w = arg;
	size_t req_len = strlen(w->request);
	char answer[2048];
	int fd = pc_connect(w->socket, 10000);

	if (fd < 0) {
		fail(w, strerror(errno));
		return NULL;
	}
	while (now() < w->deadline) {
		double t0 = now();

		if (pc_send(fd, w->request, req_len) != 0 ||
		    read_answer(fd, answer, sizeof(answer)) < 0) {
			fail(w, "no answer");
			close(fd);
			fd = pc_connect(w->socket, 10000);
			if (fd < 0)
				return NULL;
			continue;
		}
		if (strcmp(answer, w->expected) != 0)
			fail(w, answer);
		if (w->count == w->capacity) {
			size_t cap = w->capacity == 0 ? 4096 : w->capacity * 2;
			double *grown = realloc(w->latencies, cap *
			    sizeof(*grown));

			if (grown == NULL) {
				fail(w, "out of memory");
				break;
			}
			w->latencies = grown;
			w->capacity = cap;
		}
		w->latencies[w->count++] = now() - t0;
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static int
by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static char *
read_request(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text;
	long size;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0)
		return NULL;
	text = malloc((size_t)size + 2);
	if (text == NULL || fread(text, 1, (size_t)size, f) != (size_t)size) {
		fclose(f);
		free(text);
		return NULL;
	}
	fclose(f);
	/* Its lines, then the empty line that ends it. */
	if (size > 0 && text[size - 1] != '\n')
		text[size++] = '\n';
	text[size++] = '\n';
	text[size] = '\0';
	return text;
}

int
main(int argc, char **argv)
{
	unsigned connections = 200, seconds = 10;
	struct worker *workers;
	size_t total = 0, at = 0;
	unsigned long errors = 0;
	const char *first_error = NULL;
	double *all, start, elapsed;
	char *request;
	int opt;

	while ((opt = getopt(argc, argv, "c:d:")) != -1) {
		if (opt == 'c')
			connections = (unsigned)strtoul(optarg, NULL, 10);
		else if (opt == 'd')
			seconds = (unsigned)strtoul(optarg, NULL, 10);
		else
			return 2;
	}
	if (argc - optind != 3 || connections == 0 || seconds == 0) {
		fprintf(stderr, "usage: policy_load [-c CONNECTIONS] "
		    "[-d SECONDS] SOCKET REQUEST EXPECTED\n");
		return 2;
	}
	request = read_request(argv[optind + 1]);
	workers = calloc(connections, sizeof(*workers));
	if (request == NULL || workers == NULL) {
		fprintf(stderr, "policy_load: cannot read %s\n",
		    argv[optind + 1]);
		return 2;
	}
	start = now();
	for (unsigned i = 0; i < connections; i++) {
		workers[i].socket = argv[optind];
		workers[i].request = request;
		snprintf(workers[i].expected, sizeof(workers[i].expected),
		    "action=%s\n\n", argv[optind + 2]);
		workers[i].deadline = start + seconds;
		if (pthread_create(&workers[i].thread, NULL, run,
		    &workers[i]) != 0) {
			fprintf(stderr, "policy_load: pthread_create failed\n");
			return 2;
		}
	}
	for (unsigned i = 0; i < connections; i++) {
		pthread_join(workers[i].thread, NULL);
		total += workers[i].count;
		errors += workers[i].errors;
		if (first_error == NULL && workers[i].errors > 0)
			first_error = workers[i].first_error;
	}
	elapsed = now() - start;
	all = malloc((total > 0 ? total : 1) * sizeof(*all));
	if (all == NULL)
		return 2;
	for (unsigned i = 0; i < connections; i++) {
		memcpy(all + at, workers[i].latencies,
		    workers[i].count * sizeof(*all));
		at += workers[i].count;
		free(workers[i].latencies);
	}
	qsort(all, total, sizeof(*all), by_value);
	printf("connections=%u seconds=%.1f requests=%zu errors=%lu "
	    "rate=%.0f\n", connections, elapsed, total, errors,
	    (double)total / elapsed);
	if (total > 0)
		printf("latency_ms p50=%.3f p99=%.3f max=%.3f\n",
		    all[total / 2] * 1e3, all[total * 99 / 100] * 1e3,
		    all[total - 1] * 1e3);
	if (first_error != NULL)
		printf("first_error %s\n", first_error);
	free(all);
	free(workers);
	free(request);
	return errors == 0 ? 0 : 1;
}
