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

/* file_start_writeback - ask the kernel to start writing fd's dirty pages
 * now, without waiting. Before a batch of fdatasync()s this lets every
 * file's blocks be allocated and written together, so the bitmaps, inode
 * table blocks and cache flushes they share are written once instead of
 * once per file. Only a hint: errors (and file systems without it) are
 * left to the fdatasync that must follow. */
void file_start_writeback(int fd);

/* file_link_fd - give the unnamed (O_TMPFILE) file open on fd the name
 * path: through /proc/self/fd, or AT_EMPTY_PATH where /proc is missing
 * (that needs CAP_DAC_READ_SEARCH); -1 with errno */
int file_link_fd(int fd, const char *path);

#endif
