/*
 * plat.h --
 *
 *	The platform layer: the few operating-system services spps needs that
 *	C99 does not give portably.  Implemented by unix/plat_unix.c and
 *	win/plat_win.c; nothing above this layer calls the OS directly for
 *	files, locks or directories.
 *
 *	Conventions: functions return 0 on success and -1 on failure; on
 *	failure they fill the caller's PlatError with a sentence naming the
 *	operation, the path and the system's reason, e.g.
 *	    "cannot rename /x/a.tmp to /x/a: No space left on device".
 */

#ifndef SPPS_PLAT_H
#define SPPS_PLAT_H

#include <stddef.h>
#include <stdint.h>

typedef struct PlatError {
    char msg[512];
    int sysErrno;		/* errno (or a mapped value on Windows), 0 if none */
} PlatError;

/*
 * plat_write_file_durable --
 *	Replaces path with data atomically and durably: writes a temporary
 *	file in the same directory, syncs it, renames it over path, and syncs
 *	the directory.  After a crash, path holds either the old or the new
 *	content, never a mix.  The file is created with mode (e.g. 0600).
 *	The temporary file is path.tmp<pid>; a successful write also removes
 *	those of writers no longer running, so crashes leave no litter.
 */
int plat_write_file_durable(const char *path, const void *data, size_t len,
	int mode, PlatError *err);

/*
 * plat_read_file --
 *	Reads a whole file into a malloc'ed buffer (caller frees).  Refuses a
 *	file larger than maxLen, so a corrupt or hostile file cannot make us
 *	allocate without bound.  *data gets one extra NUL byte after len
 *	bytes, for callers that parse text.
 */
int plat_read_file(const char *path, size_t maxLen, uint8_t **data,
	size_t *len, PlatError *err);

/* plat_file_exists -- 1 if path exists (any type), 0 if not. */
int plat_file_exists(const char *path);
/* plat_is_dir -- 1 if path is a directory. */
int plat_is_dir(const char *path);

/*
 * plat_mkdirs --
 *	Creates dir and any missing parents with the given mode (0700 for
 *	state directories).  An existing directory is not an error.
 */
int plat_mkdirs(const char *dir, int mode, PlatError *err);

/* plat_remove -- removes a file (not an error if it is already gone). */
int plat_remove(const char *path, PlatError *err);

/* plat_remove_tree -- removes a directory and all it contains. */
int plat_remove_tree(const char *dir, PlatError *err);

/* plat_sync_dir -- makes a directory's entries (renames, unlinks) durable. */
int plat_sync_dir(const char *dir, PlatError *err);

/*
 * plat_list_dir --
 *	The names in dir, without "." and "..", sorted, as a malloc'ed
 *	NULL-terminated array of malloc'ed strings (free with plat_free_list).
 */
int plat_list_dir(const char *dir, char ***names, PlatError *err);
void plat_free_list(char **names);

/*
 * File locks serialise processes that share a state directory.  A lock
 * is held on a lock file (created if missing) and released by
 * plat_unlock or when the process ends, crash included.
 */
typedef struct PlatLock {
    intptr_t handle;		/* fd on Unix, HANDLE on Windows; -1 if none */
} PlatLock;

/* plat_lock_exclusive -- blocks until path is locked exclusively. */
int plat_lock_exclusive(const char *path, PlatLock *lock, PlatError *err);
/* plat_lock_try -- like plat_lock_exclusive but fails at once (returns 1)
 * if another process holds the lock. */
int plat_lock_try(const char *path, PlatLock *lock, PlatError *err);
void plat_unlock(PlatLock *lock);

/*
 * plat_home_dir --
 *	The user's home directory (HOME, or the profile directory on Windows)
 *	as a malloc'ed string, or NULL.
 */
char *plat_home_dir(void);

/*
 * plat_spps_home --
 *	The spps state root as a malloc'ed string: $SPPS_HOME if set, else
 *	<home>/.spps.  NULL only if neither can be found.
 */
char *plat_spps_home(void);

/* plat_join -- dir + separator + name, malloc'ed. */
char *plat_join(const char *dir, const char *name);

/* plat_pid -- the current process id (for logs and lock diagnostics). */
long plat_pid(void);

/*
 * plat_fork_generation --
 *	A number that changes in a child process after fork (0 on systems
 *	without fork), without a system call: random generators compare it
 *	to reseed in a child, so parent and child never share output.
 */
unsigned long plat_fork_generation(void);

/*
 * Mutexes, for the engine's process-wide tables and per-device state.
 * A PlatMutex must be initialised before use (plat_mutex_init) or be
 * statically initialised with PLAT_MUTEX_INITIALIZER.
 */
#ifdef _WIN32
typedef struct PlatMutex { void *srw; } PlatMutex;	/* SRWLOCK */
#define PLAT_MUTEX_INITIALIZER {0}
#ifdef __GNUC__
#define PLAT_THREAD_LOCAL __thread		/* mingw gcc ignores declspec(thread) */
#else
#define PLAT_THREAD_LOCAL __declspec(thread)
#endif
#else
#include <pthread.h>
typedef struct PlatMutex { pthread_mutex_t m; } PlatMutex;
#define PLAT_MUTEX_INITIALIZER {PTHREAD_MUTEX_INITIALIZER}
#define PLAT_THREAD_LOCAL __thread
#endif
void plat_mutex_init(PlatMutex *mutex);
void plat_mutex_lock(PlatMutex *mutex);
void plat_mutex_unlock(PlatMutex *mutex);
void plat_mutex_destroy(PlatMutex *mutex);

/*
 * Fault injection for crash tests.  When the environment variable
 * SPPS_FAULT is "crash-at-sync:N", the process exits abruptly (as in a
 * power cut of the process) just before its Nth durability step (each
 * file sync, rename or directory sync of plat_write_file_durable), so a
 * test can show that state stays consistent at every point.  Returns
 * normally otherwise.  Called by the platform layer itself; exposed so
 * higher layers can mark their own steps.
 */
void plat_fault_point(const char *what);

#endif /* SPPS_PLAT_H */
