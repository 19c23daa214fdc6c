/*
 * plat_check.c --
 *
 *	A self-contained check of the platform layer (generic/plat.h) on
 *	Windows: plat_win.c and this file alone make plat_check.exe, which
 *	needs neither Tcl nor OpenSSL.  win/makefile.vc runs it in its test
 *	target; "make check-mingw" on Linux builds it twice, with
 *	unix/plat_unix.c (run natively: the checks hold on POSIX too) and
 *	cross-compiled with win/plat_win.c (run under Wine when installed).
 *
 *	    plat_check.exe WORKDIR
 *
 *	WORKDIR must not exist; it is created and removed.  Prints one line
 *	per failed check and "plat_check: N passed, N failed"; exits 1 on
 *	any failure.
 */

#include "plat.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

/*
 * Check --
 *	Counts one check; reports it (with the platform's error message,
 *	when there is one) if it failed.
 */
static void
Check(int ok, const char *what, const PlatError *err)
{
    if (ok) {
	passed++;
    } else {
	failed++;
	printf("FAILED: %s%s%s\n", what, err && err->msg[0] ? ": " : "",
		err && err->msg[0] ? err->msg : "");
    }
}

/*
 * Path --
 *	dir/name, malloc'ed; exits if memory runs out (nothing to check
 *	without it).
 */
static char *
Path(const char *dir, const char *name)
{
    char *p = plat_join(dir, name);

    if (p == NULL) {
	fputs("plat_check: out of memory\n", stderr);
	exit(1);
    }
    return p;
}

/*
 * CheckFiles --
 *	Durable writes (create, replace, no temporary file left) and reads
 *	(content, size limit, directories refused, missing files).
 */
static void
CheckFiles(const char *root)
{
    PlatError err;
    char *file = Path(root, "data.bin");
    char **names = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    static const uint8_t first[] = {0, 1, 2, 3, 0xff};
    static const char second[] = "replaced content";

    memset(&err, 0, sizeof(err));
    Check(plat_write_file_durable(file, first, sizeof(first), 0600, &err) == 0,
	    "write a new file", &err);
    Check(plat_read_file(file, 1024, &data, &len, &err) == 0 && len == sizeof(first)
	    && memcmp(data, first, len) == 0 && data[len] == 0,
	    "read it back", &err);
    free(data);
    Check(plat_write_file_durable(file, second, strlen(second), 0644, &err) == 0,
	    "replace an existing file", &err);
    Check(plat_read_file(file, 1024, &data, &len, &err) == 0 && len == strlen(second)
	    && memcmp(data, second, len) == 0, "read the replacement", &err);
    free(data);
    Check(plat_list_dir(root, &names, &err) == 0 && names[0] != NULL
	    && strcmp(names[0], "data.bin") == 0 && names[1] == NULL,
	    "no temporary file is left", &err);
    plat_free_list(names);

    Check(plat_read_file(file, 4, &data, &len, &err) == -1 && data == NULL
	    && strstr(err.msg, "too large") != NULL, "a size limit is enforced", NULL);
    Check(plat_read_file(root, 1024, &data, &len, &err) == -1
	    && strstr(err.msg, "not a regular file") != NULL,
	    "a directory is not read as a file", NULL);
    {
	char *missing = Path(root, "missing");

	Check(plat_read_file(missing, 1024, &data, &len, &err) == -1
		&& err.sysErrno == ENOENT && strstr(err.msg, missing) != NULL,
		"a missing file: ENOENT and its name", NULL);
	Check(!plat_file_exists(missing) && plat_file_exists(file)
		&& !plat_is_dir(file) && plat_is_dir(root), "exists / is_dir", NULL);
	Check(plat_remove(missing, &err) == 0, "removing a missing file is no error", &err);
	free(missing);
    }
    Check(plat_remove(file, &err) == 0 && !plat_file_exists(file), "remove", &err);
    Check(plat_sync_dir(root, &err) == 0, "sync a directory", &err);
    free(file);
}

/*
 * CheckDirs --
 *	mkdirs (nested, existing), sorted listing with a non-ASCII name,
 *	a path longer than MAX_PATH, remove_tree.
 */
static void
CheckDirs(const char *root)
{
    PlatError err;
    char *nested = Path(root, "a/b/c");
    char *top = Path(root, "a");
    char *bdir = Path(root, "a/b");
    char *utf8 = Path(bdir, "\xc3\xa9t\xc3\xa9.txt");	/* "été.txt" */
    char *plain = Path(bdir, "Z.txt");
    char *deep, *deepFile, **names = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    int i;

    memset(&err, 0, sizeof(err));
    Check(plat_mkdirs(nested, 0700, &err) == 0 && plat_is_dir(nested),
	    "mkdirs creates parents", &err);
    Check(plat_mkdirs(nested, 0700, &err) == 0, "mkdirs of an existing directory", &err);
    Check(plat_write_file_durable(utf8, "x", 1, 0600, &err) == 0
	    && plat_write_file_durable(plain, "y", 1, 0600, &err) == 0,
	    "write files with UTF-8 names", &err);
    Check(plat_list_dir(bdir, &names, &err) == 0 && names[0] && names[1] && names[2]
	    && names[3] == NULL && strcmp(names[0], "Z.txt") == 0
	    && strcmp(names[1], "c") == 0
	    && strcmp(names[2], "\xc3\xa9t\xc3\xa9.txt") == 0,
	    "list_dir: sorted bytewise, names in UTF-8", &err);
    plat_free_list(names);

    /* A path well past MAX_PATH (260) under an absolute root. */
    deep = Path(root, "long");
    for (i = 0; i < 6; i++) {
	char *next = Path(deep, "0123456789012345678901234567890123456789012345678");

	free(deep);
	deep = next;
    }
    deepFile = Path(deep, "file.txt");
    Check(plat_mkdirs(deep, 0700, &err) == 0, "mkdirs past MAX_PATH", &err);
    Check(plat_write_file_durable(deepFile, "deep", 4, 0600, &err) == 0
	    && plat_read_file(deepFile, 16, &data, &len, &err) == 0 && len == 4
	    && memcmp(data, "deep", 4) == 0, "a file past MAX_PATH", &err);
    free(data);

    Check(plat_remove_tree(top, &err) == 0 && !plat_file_exists(top),
	    "remove_tree", &err);
    {
	char *longTop = Path(root, "long");

	Check(plat_remove_tree(longTop, &err) == 0 && !plat_file_exists(longTop),
		"remove_tree past MAX_PATH", &err);
	free(longTop);
    }
    Check(plat_remove_tree(top, &err) == 0, "remove_tree of nothing is no error", &err);
    free(nested);
    free(top);
    free(bdir);
    free(utf8);
    free(plain);
    free(deep);
    free(deepFile);
}

/*
 * CheckLocks --
 *	An exclusive lock excludes a second holder (try returns 1), and is
 *	free again once released.
 */
static void
CheckLocks(const char *root)
{
    PlatError err;
    PlatLock one, two;
    char *path = Path(root, "lock");

    memset(&err, 0, sizeof(err));
    Check(plat_lock_exclusive(path, &one, &err) == 0 && one.handle != -1,
	    "take a lock", &err);
    Check(plat_lock_try(path, &two, &err) == 1 && two.handle == -1
	    && strstr(err.msg, "locked by another process") != NULL,
	    "a second holder is refused", NULL);
    plat_unlock(&one);
    Check(one.handle == -1, "unlock clears the handle", NULL);
    Check(plat_lock_try(path, &two, &err) == 0, "the lock is free again", &err);
    plat_unlock(&two);
    free(path);
}

/*
 * CheckMisc --
 *	join, SPPS_HOME, pid, mutex.
 */
static void
CheckMisc(const char *root)
{
    static PlatMutex staticMutex = PLAT_MUTEX_INITIALIZER;
    PlatMutex mutex;
    char *j, *home;

#ifdef _WIN32
    j = plat_join("C:\\dir\\", "name");
    Check(j != NULL && strcmp(j, "C:\\dir\\name") == 0, "join after a separator", NULL);
    free(j);
#endif
    j = plat_join("C:/dir", "name");
    Check(j != NULL && strcmp(j, "C:/dir/name") == 0, "join adds one separator", NULL);
    free(j);
    home = plat_spps_home();
    Check(home != NULL && strcmp(home, root) == 0, "SPPS_HOME is the spps home", NULL);
    free(home);
    home = plat_home_dir();
    Check(home != NULL && home[0] != '\0', "a home directory", NULL);
    free(home);
    Check(plat_pid() > 0, "a process id", NULL);
    plat_mutex_init(&mutex);
    plat_mutex_lock(&mutex);
    plat_mutex_unlock(&mutex);
    plat_mutex_destroy(&mutex);
    plat_mutex_lock(&staticMutex);
    plat_mutex_unlock(&staticMutex);
    Check(1, "mutexes lock and unlock", NULL);
}

int
main(int argc, char *argv[])
{
    PlatError err;
    const char *root;
    char *env;

    if (argc != 2) {
	fputs("usage: plat_check WORKDIR (a directory that does not exist)\n", stderr);
	return 2;
    }
    root = argv[1];
    memset(&err, 0, sizeof(err));
    if (plat_file_exists(root)) {
	fprintf(stderr, "plat_check: %s exists; give a new directory\n", root);
	return 2;
    }
    env = malloc(strlen(root) + 11);
    if (env == NULL) {
	return 2;
    }
    sprintf(env, "SPPS_HOME=%s", root);
    putenv(env);			/* putenv keeps env: not freed */

    Check(plat_mkdirs(root, 0700, &err) == 0, "create the work directory", &err);
    CheckFiles(root);
    CheckDirs(root);
    CheckLocks(root);
    CheckMisc(root);
    Check(plat_remove_tree(root, &err) == 0 && !plat_file_exists(root),
	    "remove the work directory", &err);
    printf("plat_check: %d passed, %d failed\n", passed, failed);
    return failed != 0;
}
