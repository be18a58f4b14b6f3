/*
 * file - small file-system helpers shared by every program.
 */
#ifndef BASE_FILE_H
#define BASE_FILE_H

#include <sys/types.h>

struct buf;

/* file_mkdirs - mkdir -p: make path and its missing parents with mode
 * (existing folders are kept as they are); -1 with why when a part cannot
 * be made or is not a folder */
int file_mkdirs(const char *path, mode_t mode, struct buf *why);

#endif
