/*
 * file - small file-system helpers shared by every program.
 */
#ifndef BASE_FILE_H
#define BASE_FILE_H

#include <sys/types.h>

struct buf;
struct stat;

/*
 * file_owner - what file_fix_fd and file_fix_at make of a file: owner uid
 * and group gid ((uid_t)-1, (gid_t)-1: left as they are) and permission
 * bits (old & ~clear) | set (clear = set = 0: left as they are).
 */
struct file_owner {
	uid_t uid;
	gid_t gid;
	mode_t clear;
	mode_t set;
};

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

/* file_fix_fd - give the file open on fd (not O_PATH) the owner and mode
 * of want, with fchown and fchmod, only where they differ; name is for
 * why; -1 with why */
int file_fix_fd(int fd, const char *name, const struct file_owner *want,
    struct buf *why);

/*
 * file_fix_at - file_fix_fd on the entry name of the folder open on dirfd
 * (or AT_FDCWD), opened without following a symbolic link and without
 * blocking: for root changing files in a folder that a less trusted user
 * can write, where a check by name and a chown by name would let that
 * user swap in a link to any file between the two. The entry must be of
 * type (S_IFREG or S_IFDIR); a symbolic link, any other type and a
 * regular file with more than one link (a hard link to another user's
 * file) are refused with why and not touched. 1 when fixed, with the
 * open descriptor in *fd_r if fd_r is not NULL (the caller closes it;
 * a folder's is the dirfd for its own entries); 0 when name does not
 * exist (nothing in why); -1 with why.
 */
int file_fix_at(int dirfd, const char *name, mode_t type,
    const struct file_owner *want, int *fd_r, struct buf *why);

#endif
