/*
 * replay - a main() for the fuzz targets when libFuzzer is not there (the
 * ordinary and sanitizer builds): every file named, or found in a folder
 * named, is fed once to LLVMFuzzerTestOneInput. ctest runs each target
 * over its seed corpus this way, so the targets keep compiling and every
 * input that once found a bug stays a regression test.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define REPLAY_MAX (1024 * 1024)	/* largest input fed */

/* replay_file - feed one file; -1 if it cannot be read */
static int
replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data;
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	data = malloc(REPLAY_MAX);
	if (data == NULL)
		abort();
	n = fread(data, 1, REPLAY_MAX, f);
	if (ferror(f)) {
		fprintf(stderr, "replay: %s: read error\n", path);
		fclose(f);
		free(data);
		return -1;
	}
	fclose(f);
	(void)LLVMFuzzerTestOneInput(data, n);
	free(data);
	return 0;
}

/* replay_path - a file, or every regular file in a folder */
static int
replay_path(const char *path, int *count)
{
	struct dirent *de;
	struct stat st;
	char full[4096];
	int rc = 0;
	DIR *d;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		++*count;
		return replay_file(path);
	}
	if ((d = opendir(path)) == NULL) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (snprintf(full, sizeof(full), "%s/%s", path, de->d_name) >=
		    (int)sizeof(full) || stat(full, &st) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		++*count;
		if (replay_file(full) < 0)
			rc = -1;
	}
	closedir(d);
	return rc;
}

int
main(int argc, char **argv)
{
	int count = 0, rc = 0;

	for (int i = 1; i < argc; i++)
		if (replay_path(argv[i], &count) < 0)
			rc = 1;
	printf("replay: %d inputs, %s\n", count, rc ? "errors" : "ok");
	return count == 0 ? 1 : rc;
}
