/*
 * plat_unix.c --
 *
 *	The platform layer (generic/plat.h) on POSIX systems.
 */

#include "plat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

static int
Fail(PlatError *err, int sysErrno, const char *fmt, ...)
{
    if (err != NULL) {
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	if (sysErrno != 0) {
	    n = strlen(err->msg);
	    snprintf(err->msg + n, sizeof(err->msg) - n, ": %s",
		    strerror(sysErrno));
	}
	err->sysErrno = sysErrno;
    }
    return -1;
}

/* The directory part of path, malloc'ed ("." if there is none). */
static char *
DirName(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;

    if (slash == NULL) {
	return strdup(".");
    }
    if (slash == path) {
	return strdup("/");
    }
    dir = malloc((size_t)(slash - path) + 1);
    if (dir != NULL) {
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
    }
    return dir;
}

void
plat_fault_point(const char *what)
{
    static long remaining = -2;		/* -2: not read yet, -1: no fault */

    if (remaining == -2) {
	const char *spec = getenv("SPPS_FAULT");

	remaining = -1;
	if (spec != NULL && strncmp(spec, "crash-at-sync:", 14) == 0) {
	    remaining = strtol(spec + 14, NULL, 10);
	}
    }
    if (remaining > 0 && --remaining == 0) {
	/* Leave no chance for atexit handlers or buffered output to tidy up:
	 * this stands for the process dying at this point. */
	fprintf(stderr, "spps: injected crash before %s\n", what);
	_exit(86);
    }
}

static int
WriteAll(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
	ssize_t n = write(fd, p, len);

	if (n < 0) {
	    if (errno == EINTR) {
		continue;
	    }
	    return -1;
	}
	p += n;
	len -= (size_t)n;
    }
    return 0;
}

int
plat_sync_dir(const char *dir, PlatError *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0) {
	return Fail(err, errno, "cannot open directory %s", dir);
    }
    plat_fault_point("directory sync");
    if (fsync(fd) != 0 && errno != EINVAL) {
	int e = errno;

	close(fd);
	return Fail(err, e, "cannot sync directory %s", dir);
    }
    close(fd);
    return 0;
}

/*
 * RemoveStaleTemps --
 *	Removes the temporary files of path that writers which died before
 *	their rename left behind (path.tmp<pid> of a process no longer
 *	running), so that crashes leave no litter.  A live writer's file and
 *	one of a process we may not signal are left alone.  Best effort:
 *	nothing here can change what path holds.
 */
static void
RemoveStaleTemps(const char *path, const char *dir)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash != NULL ? slash + 1 : path;
    size_t baseLen = strlen(base);
    struct dirent *ent;
    DIR *d = opendir(dir);

    if (d == NULL) {
	return;
    }
    while ((ent = readdir(d)) != NULL) {
	const char *digits;
	char *end, *stale;
	long pid;

	if (strncmp(ent->d_name, base, baseLen) != 0
		|| strncmp(ent->d_name + baseLen, ".tmp", 4) != 0) {
	    continue;
	}
	digits = ent->d_name + baseLen + 4;
	if (*digits < '0' || *digits > '9') {
	    continue;
	}
	errno = 0;
	pid = strtol(digits, &end, 10);
	if (*end != '\0' || errno != 0 || pid <= 0 || pid == (long) getpid()
		|| (pid_t) pid != pid) {
	    continue;
	}
	if (kill((pid_t) pid, 0) == 0 || errno != ESRCH) {
	    continue;
	}
	if ((stale = plat_join(dir, ent->d_name)) != NULL) {
	    unlink(stale);
	    free(stale);
	}
    }
    closedir(d);
}

int
plat_write_file_durable(const char *path, const void *data, size_t len,
	int mode, PlatError *err)
{
    size_t pathLen = strlen(path);
    char *tmp = malloc(pathLen + 32);
    char *dir = DirName(path);
    int fd = -1, e;

    if (tmp == NULL || dir == NULL) {
	free(tmp);
	free(dir);
	return Fail(err, ENOMEM, "cannot write %s", path);
    }
    snprintf(tmp, pathLen + 32, "%s.tmp%ld", path, (long) getpid());
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) {
	e = errno;
	Fail(err, e, "cannot create %s", tmp);
	goto error;
    }
    if (WriteAll(fd, data, len) != 0) {
	e = errno;
	Fail(err, e, "cannot write %s", tmp);
	goto error;
    }
    plat_fault_point("file sync");
    if (fsync(fd) != 0) {
	e = errno;
	Fail(err, e, "cannot sync %s", tmp);
	goto error;
    }
    if (close(fd) != 0) {
	fd = -1;
	e = errno;
	Fail(err, e, "cannot close %s", tmp);
	goto error;
    }
    fd = -1;
    plat_fault_point("rename");
    if (rename(tmp, path) != 0) {
	e = errno;
	Fail(err, e, "cannot rename %s to %s", tmp, path);
	goto error;
    }
    if (plat_sync_dir(dir, err) != 0) {
	free(tmp);
	free(dir);
	return -1;
    }
    RemoveStaleTemps(path, dir);
    free(tmp);
    free(dir);
    return 0;

  error:
    if (fd >= 0) {
	close(fd);
    }
    unlink(tmp);
    free(tmp);
    free(dir);
    return -1;
}

int
plat_read_file(const char *path, size_t maxLen, uint8_t **data, size_t *len,
	PlatError *err)
{
    struct stat st;
    uint8_t *buf;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    *data = NULL;
    *len = 0;
    if (fd < 0) {
	return Fail(err, errno, "cannot open %s", path);
    }
    if (fstat(fd, &st) != 0) {
	int e = errno;

	close(fd);
	return Fail(err, e, "cannot stat %s", path);
    }
    if (!S_ISREG(st.st_mode)) {
	close(fd);
	return Fail(err, 0, "%s is not a regular file", path);
    }
    if ((uintmax_t) st.st_size > (uintmax_t) maxLen) {
	close(fd);
	return Fail(err, 0, "%s is too large (%jd bytes, at most %zu allowed)",
		path, (intmax_t) st.st_size, maxLen);
    }
    buf = malloc((size_t) st.st_size + 1);
    if (buf == NULL) {
	close(fd);
	return Fail(err, ENOMEM, "cannot read %s", path);
    }
    /* Read what is there, whatever stat said: the file may change size. */
    while (got <= (size_t) st.st_size) {
	ssize_t n = read(fd, buf + got, (size_t) st.st_size + 1 - got);

	if (n < 0) {
	    int e = errno;

	    if (e == EINTR) {
		continue;
	    }
	    free(buf);
	    close(fd);
	    return Fail(err, e, "cannot read %s", path);
	}
	if (n == 0) {
	    break;
	}
	got += (size_t) n;
    }
    close(fd);
    if (got > (size_t) st.st_size) {
	free(buf);
	return Fail(err, 0, "%s changed size while being read", path);
    }
    buf[got] = 0;
    *data = buf;
    *len = got;
    return 0;
}

int
plat_file_exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

int
plat_is_dir(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int
plat_mkdirs(const char *dir, int mode, PlatError *err)
{
    char *copy = strdup(dir);
    char *p;

    if (copy == NULL) {
	return Fail(err, ENOMEM, "cannot create directory %s", dir);
    }
    for (p = copy + 1; ; p++) {
	if (*p == '/' || *p == '\0') {
	    char saved = *p;

	    *p = '\0';
	    if (mkdir(copy, (mode_t) mode) != 0 && errno != EEXIST) {
		int e = errno;

		Fail(err, e, "cannot create directory %s", copy);
		free(copy);
		return -1;
	    }
	    *p = saved;
	    if (saved == '\0') {
		break;
	    }
	}
    }
    free(copy);
    if (!plat_is_dir(dir)) {
	return Fail(err, ENOTDIR, "cannot create directory %s", dir);
    }
    return 0;
}

int
plat_remove(const char *path, PlatError *err)
{
    if (unlink(path) != 0 && errno != ENOENT) {
	return Fail(err, errno, "cannot remove %s", path);
    }
    return 0;
}

int
plat_remove_tree(const char *dir, PlatError *err)
{
    char **names, **n;
    int result = 0;
    struct stat st;

    if (lstat(dir, &st) != 0) {
	return errno == ENOENT ? 0 : Fail(err, errno, "cannot remove %s", dir);
    }
    if (!S_ISDIR(st.st_mode)) {
	return plat_remove(dir, err);
    }
    if (plat_list_dir(dir, &names, err) != 0) {
	return -1;
    }
    for (n = names; *n != NULL && result == 0; n++) {
	char *child = plat_join(dir, *n);

	if (child == NULL) {
	    result = Fail(err, ENOMEM, "cannot remove %s", dir);
	} else {
	    result = plat_remove_tree(child, err);
	    free(child);
	}
    }
    plat_free_list(names);
    if (result == 0 && rmdir(dir) != 0) {
	return Fail(err, errno, "cannot remove directory %s", dir);
    }
    return result;
}

static int
CompareNames(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

int
plat_list_dir(const char *dir, char ***names, PlatError *err)
{
    DIR *d = opendir(dir);
    struct dirent *ent;
    char **list = NULL;
    size_t count = 0, room = 0;

    *names = NULL;
    if (d == NULL) {
	return Fail(err, errno, "cannot read directory %s", dir);
    }
    while ((ent = readdir(d)) != NULL) {
	if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0) {
	    continue;
	}
	if (count + 1 >= room) {
	    char **bigger;

	    room = room ? 2 * room : 16;
	    bigger = realloc(list, room * sizeof(char *));
	    if (bigger == NULL) {
		goto nomem;
	    }
	    list = bigger;
	}
	if ((list[count] = strdup(ent->d_name)) == NULL) {
	    goto nomem;
	}
	count++;
    }
    closedir(d);
    if (list == NULL && (list = malloc(sizeof(char *))) == NULL) {
	return Fail(err, ENOMEM, "cannot read directory %s", dir);
    }
    list[count] = NULL;
    qsort(list, count, sizeof(char *), CompareNames);
    *names = list;
    return 0;

  nomem:
    closedir(d);
    if (list != NULL) {
	list[count] = NULL;
	plat_free_list(list);
    }
    return Fail(err, ENOMEM, "cannot read directory %s", dir);
}

void
plat_free_list(char **names)
{
    char **n;

    if (names == NULL) {
	return;
    }
    for (n = names; *n != NULL; n++) {
	free(*n);
    }
    free(names);
}

static int
LockFile(const char *path, int how, PlatLock *lock, PlatError *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    lock->handle = -1;
    if (fd < 0) {
	return Fail(err, errno, "cannot open lock file %s", path);
    }
    while (flock(fd, how) != 0) {
	int e = errno;

	if (e == EINTR) {
	    continue;
	}
	close(fd);
	if (e == EWOULDBLOCK) {
	    Fail(err, 0, "%s is locked by another process", path);
	    return 1;
	}
	return Fail(err, e, "cannot lock %s", path);
    }
    lock->handle = fd;
    return 0;
}

int
plat_lock_exclusive(const char *path, PlatLock *lock, PlatError *err)
{
    return LockFile(path, LOCK_EX, lock, err);
}

int
plat_lock_try(const char *path, PlatLock *lock, PlatError *err)
{
    return LockFile(path, LOCK_EX | LOCK_NB, lock, err);
}

void
plat_unlock(PlatLock *lock)
{
    if (lock->handle >= 0) {
	flock((int) lock->handle, LOCK_UN);
	close((int) lock->handle);
	lock->handle = -1;
    }
}

char *
plat_home_dir(void)
{
    const char *home = getenv("HOME");

    if (home == NULL || *home == '\0') {
	struct passwd *pw = getpwuid(getuid());

	home = pw ? pw->pw_dir : NULL;
    }
    return home ? strdup(home) : NULL;
}

char *
plat_spps_home(void)
{
    const char *env = getenv("SPPS_HOME");
    char *home, *dir;

    if (env != NULL && *env != '\0') {
	return strdup(env);
    }
    home = plat_home_dir();
    if (home == NULL) {
	return NULL;
    }
    dir = plat_join(home, ".spps");
    free(home);
    return dir;
}

char *
plat_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *path = malloc(a + b + 2);

    if (path != NULL) {
	memcpy(path, dir, a);
	path[a] = '/';
	memcpy(path + a + 1, name, b + 1);
    }
    return path;
}

long
plat_pid(void)
{
    return (long) getpid();
}

static volatile unsigned long forkGeneration = 1;
static pthread_once_t forkOnce = PTHREAD_ONCE_INIT;

static void
ForkChild(void)
{
    forkGeneration++;
}

static void
RegisterForkHandler(void)
{
    pthread_atfork(NULL, NULL, ForkChild);
}

unsigned long
plat_fork_generation(void)
{
    pthread_once(&forkOnce, RegisterForkHandler);
    return forkGeneration;
}

void
plat_mutex_init(PlatMutex *mutex)
{
    pthread_mutex_init(&mutex->m, NULL);
}

void
plat_mutex_lock(PlatMutex *mutex)
{
    pthread_mutex_lock(&mutex->m);
}

void
plat_mutex_unlock(PlatMutex *mutex)
{
    pthread_mutex_unlock(&mutex->m);
}

void
plat_mutex_destroy(PlatMutex *mutex)
{
    pthread_mutex_destroy(&mutex->m);
}
