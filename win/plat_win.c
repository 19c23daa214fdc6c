/*
 * plat_win.c --
 *
 *	The platform layer (generic/plat.h) on Windows, with Win32 calls.
 *	Paths come and go as UTF-8 and are converted to UTF-16 for the wide
 *	("W") functions; an absolute path longer than MAX_PATH gets the
 *	"\\?\" prefix.  Durable writes use FlushFileBuffers and
 *	MoveFileExW(MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH);
 *	locks are LockFileEx byte-range locks, which Windows releases when
 *	the process ends; PlatMutex is an SRWLOCK.  A file or directory
 *	created with a mode that gives nothing to group and others (0600,
 *	0700) gets a protected DACL granting access to its owner only, the
 *	Windows form of that mode.
 */

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0600		/* Vista: SRW locks, FindFirstFileExW */
#endif
#include <windows.h>
#include <sddl.h>

#include "plat.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The header keeps a void * for the SRWLOCK, so that it needs no windows.h. */
typedef char PlatMutexFitsSrwLock[
	(sizeof(((PlatMutex *) 0)->srw) == sizeof(SRWLOCK)) ? 1 : -1];

/* Both separators are separators on Windows. */
#define IS_SEP(c)	((c) == '/' || (c) == '\\')

/* The protected DACLs for "owner only" (files; directories and their
 * contents). */
#define OWNER_ONLY_FILE	L"D:P(A;;FA;;;OW)"
#define OWNER_ONLY_DIR	L"D:P(A;OICI;FA;;;OW)"

/*
 * ErrnoOf --
 *	The errno value closest to a Win32 error, so that callers and
 *	messages see the same vocabulary as on POSIX; 0 if there is none.
 */
static int
ErrnoOf(DWORD winErr)
{
    switch (winErr) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_DRIVE:
    case ERROR_BAD_NETPATH:
    case ERROR_BAD_NET_NAME:
	return ENOENT;
    case ERROR_ACCESS_DENIED:
    case ERROR_CURRENT_DIRECTORY:
    case ERROR_WRITE_PROTECT:
	return EACCES;
    case ERROR_SHARING_VIOLATION:
    case ERROR_LOCK_VIOLATION:
	return EBUSY;
    case ERROR_ALREADY_EXISTS:
    case ERROR_FILE_EXISTS:
	return EEXIST;
    case ERROR_DISK_FULL:
    case ERROR_HANDLE_DISK_FULL:
	return ENOSPC;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
	return ENOMEM;
    case ERROR_DIRECTORY:
	return ENOTDIR;
    case ERROR_DIR_NOT_EMPTY:
	return ENOTEMPTY;
    case ERROR_FILENAME_EXCED_RANGE:
	return ENAMETOOLONG;
    case ERROR_INVALID_NAME:
    case ERROR_NO_UNICODE_TRANSLATION:
	return EINVAL;
    default:
	return 0;
    }
}

/*
 * Fail --
 *	Fills err with the formatted sentence and the system's reason (the
 *	C library's text for the mapped errno, else Windows' own text with
 *	its error number) and returns -1.  winErr 0: no system reason.
 */
static int
Fail(PlatError *err, DWORD winErr, const char *fmt, ...)
{
    va_list ap;
    size_t n;
    int e;

    if (err == NULL) {
	return -1;
    }
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->sysErrno = 0;
    if (winErr == 0) {
	return -1;
    }
    n = strlen(err->msg);
    e = ErrnoOf(winErr);
    if (e != 0) {
	err->sysErrno = e;
	snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(e));
    } else {
	char text[256];
	DWORD len = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM
		| FORMAT_MESSAGE_IGNORE_INSERTS, NULL, winErr,
		MAKELANGID(LANG_ENGLISH, SUBLANG_DEFAULT), text,
		(DWORD) sizeof(text), NULL);

	while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'
		|| text[len - 1] == '.' || text[len - 1] == ' ')) {
	    text[--len] = '\0';
	}
	err->sysErrno = EIO;
	snprintf(err->msg + n, sizeof(err->msg) - n, ": %s (Windows error %lu)",
		len > 0 ? text : "system error", (unsigned long) winErr);
    }
    return -1;
}

/*
 * Widen --
 *	A UTF-8 path as a malloc'ed UTF-16 path with backslashes.  A path
 *	too long for MAX_PATH is made absolute and normal (GetFullPathNameW:
 *	"\\?\" turns off the system's own clean-up of "..", "." and doubled
 *	separators) and gets the "\\?\" or "\\?\UNC\" prefix.  NULL if path
 *	is not valid UTF-8 or memory runs out (the Win32 error is then set).
 */
static wchar_t *
Widen(const char *path)
{
    int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, path, -1,
	    NULL, 0);
    wchar_t *wide, *full, *out;
    const wchar_t *prefix, *rest;
    DWORD fullLen;
    size_t prefixLen, restLen;
    int i;

    if (n <= 0) {
	return NULL;
    }
    wide = malloc((size_t) n * sizeof(wchar_t));
    if (wide == NULL) {
	SetLastError(ERROR_NOT_ENOUGH_MEMORY);
	return NULL;
    }
    MultiByteToWideChar(CP_UTF8, 0, path, -1, wide, n);
    for (i = 0; wide[i] != 0; i++) {
	if (wide[i] == L'/') {
	    wide[i] = L'\\';
	}
    }
    if (n - 1 < MAX_PATH - 12 || wcsncmp(wide, L"\\\\?\\", 4) == 0) {
	return wide;
    }
    fullLen = GetFullPathNameW(wide, 0, NULL, NULL);
    full = fullLen ? malloc((size_t) fullLen * sizeof(wchar_t)) : NULL;
    if (fullLen == 0 || full == NULL
	    || GetFullPathNameW(wide, fullLen, full, NULL) == 0) {
	DWORD e = (fullLen != 0 && full == NULL)
		? ERROR_NOT_ENOUGH_MEMORY : GetLastError();

	free(full);
	free(wide);
	SetLastError(e);
	return NULL;
    }
    free(wide);
    if (full[0] == L'\\' && full[1] == L'\\') {
	prefix = L"\\\\?\\UNC\\";		/* \\server\share -> \\?\UNC\server\share */
	rest = full + 2;
    } else {
	prefix = L"\\\\?\\";
	rest = full;
    }
    prefixLen = wcslen(prefix);
    restLen = wcslen(rest);
    out = malloc((prefixLen + restLen + 1) * sizeof(wchar_t));
    if (out == NULL) {
	free(full);
	SetLastError(ERROR_NOT_ENOUGH_MEMORY);
	return NULL;
    }
    memcpy(out, prefix, prefixLen * sizeof(wchar_t));
    memcpy(out + prefixLen, rest, (restLen + 1) * sizeof(wchar_t));
    free(full);
    return out;
}

/*
 * Narrow --
 *	A UTF-16 string as a malloc'ed UTF-8 string, or NULL.
 */
static char *
Narrow(const wchar_t *wide)
{
    int n = WideCharToMultiByte(CP_UTF8, 0, wide, -1, NULL, 0, NULL, NULL);
    char *s;

    if (n <= 0 || (s = malloc((size_t) n)) == NULL) {
	return NULL;
    }
    WideCharToMultiByte(CP_UTF8, 0, wide, -1, s, n, NULL, NULL);
    return s;
}

/*
 * OwnerOnly --
 *	For a mode without group and other bits, security attributes with
 *	the owner-only DACL (free sa->lpSecurityDescriptor with LocalFree);
 *	else NULL: the object inherits its parent's ACL.
 */
static SECURITY_ATTRIBUTES *
OwnerOnly(int mode, int isDir, SECURITY_ATTRIBUTES *sa)
{
    PSECURITY_DESCRIPTOR sd = NULL;

    if ((mode & 077) != 0) {
	return NULL;
    }
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(
	    isDir ? OWNER_ONLY_DIR : OWNER_ONLY_FILE, SDDL_REVISION_1, &sd, NULL)) {
	return NULL;
    }
    sa->nLength = sizeof(*sa);
    sa->lpSecurityDescriptor = sd;
    sa->bInheritHandle = FALSE;
    return sa;
}

/* FreeSecurity -- releases what OwnerOnly allocated (sa may be NULL). */
static void
FreeSecurity(SECURITY_ATTRIBUTES *sa)
{
    if (sa != NULL && sa->lpSecurityDescriptor != NULL) {
	LocalFree(sa->lpSecurityDescriptor);
    }
}

/* DirName -- the directory part of path, malloc'ed ("." if there is none). */
static char *
DirName(const char *path)
{
    const char *slash = NULL, *p;
    char *dir;

    for (p = path; *p != '\0'; p++) {
	if (IS_SEP(*p)) {
	    slash = p;
	}
    }
    if (slash == NULL) {
	return _strdup(".");
    }
    if (slash == path || (slash == path + 2 && path[1] == ':')) {
	slash++;			/* keep the root: "/" or "C:\" */
    }
    dir = malloc((size_t) (slash - path) + 1);
    if (dir != NULL) {
	memcpy(dir, path, (size_t) (slash - path));
	dir[slash - path] = '\0';
    }
    return dir;
}

/*
 * plat_fault_point --
 *	the SPPS_FAULT crash injection (plat.h): TerminateProcess, as
 *	abrupt as a power cut of the process.
 */
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
	/* No atexit handler, no buffered output: the process just stops. */
	fprintf(stderr, "spps: injected crash before %s\n", what);
	fflush(stderr);
	TerminateProcess(GetCurrentProcess(), 86);
    }
}

/*
 * WriteAll --
 *	Writes len bytes to h, in pieces WriteFile can take.
 */
static BOOL
WriteAll(HANDLE h, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
	DWORD chunk = len > 0x40000000 ? 0x40000000 : (DWORD) len, done = 0;

	if (!WriteFile(h, p, chunk, &done, NULL)) {
	    return FALSE;
	}
	p += done;
	len -= done;
    }
    return TRUE;
}

/*
 * plat_sync_dir --
 *	opens the directory and flushes it where the volume allows (see
 *	below).
 */
int
plat_sync_dir(const char *dir, PlatError *err)
{
    wchar_t *wdir = Widen(dir);
    HANDLE h;

    if (wdir == NULL) {
	return Fail(err, GetLastError(), "cannot open directory %s", dir);
    }
    h = CreateFileW(wdir, GENERIC_READ,
	    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
	    OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    free(wdir);
    if (h == INVALID_HANDLE_VALUE) {
	return Fail(err, GetLastError(), "cannot open directory %s", dir);
    }
    plat_fault_point("directory sync");
    /*
     * NTFS makes a MOVEFILE_WRITE_THROUGH rename durable before it
     * returns; flushing a directory handle is refused on most volumes
     * (access denied, invalid function), which is no error here.
     */
    if (!FlushFileBuffers(h)) {
	DWORD e = GetLastError();

	if (e != ERROR_ACCESS_DENIED && e != ERROR_INVALID_FUNCTION
		&& e != ERROR_INVALID_HANDLE) {
	    CloseHandle(h);
	    return Fail(err, e, "cannot sync directory %s", dir);
	}
    }
    CloseHandle(h);
    return 0;
}

/*
 * ProcessGone --
 *	1 if no process with this id is running (a dead writer's id).
 */
static int
ProcessGone(unsigned long pid)
{
    HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, (DWORD) pid);
    int gone;

    if (h == NULL) {
	return GetLastError() == ERROR_INVALID_PARAMETER;
    }
    gone = WaitForSingleObject(h, 0) == WAIT_OBJECT_0;
    CloseHandle(h);
    return gone;
}

/*
 * RemoveStaleTemps --
 *	Removes the temporary files of path that writers which died before
 *	their rename left behind (path.tmp<pid> of a process no longer
 *	running), so that crashes leave no litter.  A live writer's file is
 *	left alone.  Best effort: nothing here can change what path holds.
 */
static void
RemoveStaleTemps(const char *path, const char *dir)
{
    const char *base = path, *p;
    size_t baseLen, i;
    char **names;
    PlatError ignored;

    for (p = path; *p != '\0'; p++) {
	if (*p == '/' || *p == '\\') {
	    base = p + 1;
	}
    }
    baseLen = strlen(base);
    if (plat_list_dir(dir, &names, &ignored) != 0) {
	return;
    }
    for (i = 0; names[i] != NULL; i++) {
	const char *digits;
	char *end, *stale;
	unsigned long pid;

	if (strncmp(names[i], base, baseLen) != 0
		|| strncmp(names[i] + baseLen, ".tmp", 4) != 0) {
	    continue;
	}
	digits = names[i] + baseLen + 4;
	if (*digits < '0' || *digits > '9') {
	    continue;
	}
	errno = 0;
	pid = strtoul(digits, &end, 10);
	if (*end != '\0' || errno != 0 || pid == 0
		|| pid == (unsigned long) GetCurrentProcessId()
		|| !ProcessGone(pid)) {
	    continue;
	}
	if ((stale = plat_join(dir, names[i])) != NULL) {
	    plat_remove(stale, &ignored);
	    free(stale);
	}
    }
    plat_free_list(names);
}

/*
 * plat_write_file_durable --
 *	temporary file, FlushFileBuffers, MoveFileExW with write-through,
 *	directory sync.
 */
int
plat_write_file_durable(const char *path, const void *data, size_t len,
	int mode, PlatError *err)
{
    size_t pathLen = strlen(path);
    char *tmp = malloc(pathLen + 32);
    char *dir = DirName(path);
    wchar_t *wtmp = NULL, *wpath = NULL;
    SECURITY_ATTRIBUTES saBuf, *sa = NULL;
    HANDLE h = INVALID_HANDLE_VALUE;
    DWORD e;

    if (tmp == NULL || dir == NULL) {
	free(tmp);
	free(dir);
	return Fail(err, ERROR_NOT_ENOUGH_MEMORY, "cannot write %s", path);
    }
    snprintf(tmp, pathLen + 32, "%s.tmp%lu", path,
	    (unsigned long) GetCurrentProcessId());
    wtmp = Widen(tmp);
    wpath = Widen(path);
    if (wtmp == NULL || wpath == NULL) {
	Fail(err, GetLastError(), "cannot write %s", path);
	goto error;
    }
    sa = OwnerOnly(mode, 0, &saBuf);
    h = CreateFileW(wtmp, GENERIC_WRITE, 0, sa, CREATE_ALWAYS,
	    FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE) {
	Fail(err, GetLastError(), "cannot create %s", tmp);
	goto error;
    }
    if (!WriteAll(h, data, len)) {
	Fail(err, GetLastError(), "cannot write %s", tmp);
	goto error;
    }
    plat_fault_point("file sync");
    if (!FlushFileBuffers(h)) {
	Fail(err, GetLastError(), "cannot sync %s", tmp);
	goto error;
    }
    if (!CloseHandle(h)) {
	h = INVALID_HANDLE_VALUE;
	Fail(err, GetLastError(), "cannot close %s", tmp);
	goto error;
    }
    h = INVALID_HANDLE_VALUE;
    plat_fault_point("rename");
    if (!MoveFileExW(wtmp, wpath,
	    MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH)) {
	Fail(err, GetLastError(), "cannot rename %s to %s", tmp, path);
	goto error;
    }
    FreeSecurity(sa);
    free(wtmp);
    free(wpath);
    free(tmp);
    if (plat_sync_dir(dir, err) != 0) {
	free(dir);
	return -1;
    }
    RemoveStaleTemps(path, dir);
    free(dir);
    return 0;

  error:
    e = GetLastError();
    if (h != INVALID_HANDLE_VALUE) {
	CloseHandle(h);
    }
    if (wtmp != NULL) {
	DeleteFileW(wtmp);
    }
    SetLastError(e);
    FreeSecurity(sa);
    free(wtmp);
    free(wpath);
    free(tmp);
    free(dir);
    return -1;
}

/*
 * plat_read_file --
 *	the whole file, refusing directories, devices and files over
 *	maxLen.
 */
int
plat_read_file(const char *path, size_t maxLen, uint8_t **data, size_t *len,
	PlatError *err)
{
    wchar_t *wpath = Widen(path);
    BY_HANDLE_FILE_INFORMATION info;
    LARGE_INTEGER size;
    uint8_t *buf;
    size_t got = 0, room;
    HANDLE h;

    *data = NULL;
    *len = 0;
    if (wpath == NULL) {
	return Fail(err, GetLastError(), "cannot open %s", path);
    }
    h = CreateFileW(wpath, GENERIC_READ,
	    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
	    OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    free(wpath);
    if (h == INVALID_HANDLE_VALUE) {
	return Fail(err, GetLastError(), "cannot open %s", path);
    }
    if (!GetFileInformationByHandle(h, &info) || !GetFileSizeEx(h, &size)) {
	DWORD e = GetLastError();

	CloseHandle(h);
	return Fail(err, e, "cannot stat %s", path);
    }
    if ((info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
	    || GetFileType(h) != FILE_TYPE_DISK) {
	CloseHandle(h);
	return Fail(err, 0, "%s is not a regular file", path);
    }
    if (size.QuadPart < 0
	    || (unsigned long long) size.QuadPart > (unsigned long long) maxLen) {
	CloseHandle(h);
	return Fail(err, 0, "%s is too large (%lld bytes, at most %zu allowed)",
		path, (long long) size.QuadPart, maxLen);
    }
    room = (size_t) size.QuadPart + 1;
    buf = malloc(room);
    if (buf == NULL) {
	CloseHandle(h);
	return Fail(err, ERROR_NOT_ENOUGH_MEMORY, "cannot read %s", path);
    }
    /* Read what is there, whatever the size said: the file may change. */
    while (got < room) {
	DWORD want = (room - got) > 0x40000000 ? 0x40000000 : (DWORD) (room - got);
	DWORD n = 0;

	if (!ReadFile(h, buf + got, want, &n, NULL)) {
	    DWORD e = GetLastError();

	    free(buf);
	    CloseHandle(h);
	    return Fail(err, e, "cannot read %s", path);
	}
	if (n == 0) {
	    break;
	}
	got += n;
    }
    CloseHandle(h);
    if (got > (size_t) size.QuadPart) {
	free(buf);
	return Fail(err, 0, "%s changed size while being read", path);
    }
    buf[got] = 0;
    *data = buf;
    *len = got;
    return 0;
}

/* Attributes -- the attributes of path, or INVALID_FILE_ATTRIBUTES. */
static DWORD
Attributes(const char *path)
{
    wchar_t *wpath = Widen(path);
    DWORD attr;

    if (wpath == NULL) {
	return INVALID_FILE_ATTRIBUTES;
    }
    attr = GetFileAttributesW(wpath);
    free(wpath);
    return attr;
}

/* plat_file_exists -- 1 if path exists (any type). */
int
plat_file_exists(const char *path)
{
    return Attributes(path) != INVALID_FILE_ATTRIBUTES;
}

/* plat_is_dir -- 1 if path is a directory. */
int
plat_is_dir(const char *path)
{
    DWORD attr = Attributes(path);

    return attr != INVALID_FILE_ATTRIBUTES && (attr & FILE_ATTRIBUTE_DIRECTORY);
}

/*
 * RootLength --
 *	The length of path's root, which plat_mkdirs does not create: "C:",
 *	"C:\", "\", or "\\server\share\".
 */
static size_t
RootLength(const char *path)
{
    size_t i;
    int parts;

    if (IS_SEP(path[0]) && IS_SEP(path[1])) {
	/* UNC or \\?\ : skip two more components. */
	for (i = 2, parts = 0; path[i] != '\0'; i++) {
	    if (IS_SEP(path[i]) && ++parts == 2) {
		return i + 1;
	    }
	}
	return i;
    }
    if (path[0] != '\0' && path[1] == ':') {
	return IS_SEP(path[2]) ? 3 : 2;
    }
    return IS_SEP(path[0]) ? 1 : 0;
}

/*
 * plat_mkdirs --
 *	creates each missing component after the root, owner-only for mode
 *	0700.
 */
int
plat_mkdirs(const char *dir, int mode, PlatError *err)
{
    char *copy = _strdup(dir);
    SECURITY_ATTRIBUTES saBuf, *sa;
    char *p;

    if (copy == NULL) {
	return Fail(err, ERROR_NOT_ENOUGH_MEMORY, "cannot create directory %s", dir);
    }
    sa = OwnerOnly(mode, 1, &saBuf);
    for (p = copy + RootLength(copy); ; p++) {
	if (*p == '\0' || IS_SEP(*p)) {
	    char saved = *p;

	    *p = '\0';
	    if (p > copy && !IS_SEP(p[-1]) && !plat_is_dir(copy)) {
		wchar_t *wide = Widen(copy);

		if (wide == NULL || (!CreateDirectoryW(wide, sa)
			&& GetLastError() != ERROR_ALREADY_EXISTS)) {
		    DWORD e = GetLastError();

		    free(wide);
		    Fail(err, e, "cannot create directory %s", copy);
		    FreeSecurity(sa);
		    free(copy);
		    return -1;
		}
		free(wide);
	    }
	    *p = saved;
	    if (saved == '\0') {
		break;
	    }
	}
    }
    FreeSecurity(sa);
    free(copy);
    if (!plat_is_dir(dir)) {
	return Fail(err, ERROR_DIRECTORY, "cannot create directory %s", dir);
    }
    return 0;
}

/*
 * plat_remove --
 *	DeleteFileW; a read-only file is made writable first, as POSIX
 *	would not care.
 */
int
plat_remove(const char *path, PlatError *err)
{
    wchar_t *wpath = Widen(path);
    DWORD e;

    if (wpath == NULL) {
	return Fail(err, GetLastError(), "cannot remove %s", path);
    }
    if (!DeleteFileW(wpath)) {
	e = GetLastError();
	if (e == ERROR_ACCESS_DENIED) {
	    /* A read-only file: Windows refuses what POSIX allows. */
	    DWORD attr = GetFileAttributesW(wpath);

	    if (attr != INVALID_FILE_ATTRIBUTES && (attr & FILE_ATTRIBUTE_READONLY)
		    && SetFileAttributesW(wpath, attr & ~FILE_ATTRIBUTE_READONLY)
		    && DeleteFileW(wpath)) {
		e = ERROR_SUCCESS;
	    }
	}
	if (e != ERROR_SUCCESS && e != ERROR_FILE_NOT_FOUND
		&& e != ERROR_PATH_NOT_FOUND) {
	    free(wpath);
	    return Fail(err, e, "cannot remove %s", path);
	}
    }
    free(wpath);
    return 0;
}

/*
 * plat_remove_tree --
 *	depth first; a junction or directory symlink is removed, never
 *	followed.
 */
int
plat_remove_tree(const char *dir, PlatError *err)
{
    DWORD attr = Attributes(dir);
    char **names, **n;
    wchar_t *wdir;
    int result = 0;

    if (attr == INVALID_FILE_ATTRIBUTES) {
	DWORD e = GetLastError();

	return (e == ERROR_FILE_NOT_FOUND || e == ERROR_PATH_NOT_FOUND)
		? 0 : Fail(err, e, "cannot remove %s", dir);
    }
    if (!(attr & FILE_ATTRIBUTE_DIRECTORY)) {
	return plat_remove(dir, err);
    }
    /* A junction or directory symlink: remove the link, never its target. */
    if (!(attr & FILE_ATTRIBUTE_REPARSE_POINT)) {
	if (plat_list_dir(dir, &names, err) != 0) {
	    return -1;
	}
	for (n = names; *n != NULL && result == 0; n++) {
	    char *child = plat_join(dir, *n);

	    if (child == NULL) {
		result = Fail(err, ERROR_NOT_ENOUGH_MEMORY, "cannot remove %s", dir);
	    } else {
		result = plat_remove_tree(child, err);
		free(child);
	    }
	}
	plat_free_list(names);
	if (result != 0) {
	    return result;
	}
    }
    wdir = Widen(dir);
    if (wdir == NULL || !RemoveDirectoryW(wdir)) {
	DWORD e = GetLastError();

	free(wdir);
	return Fail(err, e, "cannot remove directory %s", dir);
    }
    free(wdir);
    return 0;
}

/* CompareNames -- qsort order of plat_list_dir: bytewise, as on POSIX. */
static int
CompareNames(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * plat_list_dir --
 *	FindFirstFileExW over dir\\*, names in UTF-8, sorted bytewise.
 */
int
plat_list_dir(const char *dir, char ***names, PlatError *err)
{
    size_t dirLen = strlen(dir);
    char *pattern = malloc(dirLen + 3);
    wchar_t *wpattern;
    WIN32_FIND_DATAW found;
    HANDLE h;
    char **list = NULL;
    size_t count = 0, room = 0;
    DWORD e;

    *names = NULL;
    if (pattern == NULL) {
	return Fail(err, ERROR_NOT_ENOUGH_MEMORY, "cannot read directory %s", dir);
    }
    memcpy(pattern, dir, dirLen);
    memcpy(pattern + dirLen, "\\*", 3);
    wpattern = Widen(pattern);
    free(pattern);
    if (wpattern == NULL) {
	return Fail(err, GetLastError(), "cannot read directory %s", dir);
    }
    h = FindFirstFileExW(wpattern, FindExInfoBasic, &found,
	    FindExSearchNameMatch, NULL, 0);
    free(wpattern);
    if (h == INVALID_HANDLE_VALUE) {
	e = GetLastError();
	if (e != ERROR_FILE_NOT_FOUND) {
	    return Fail(err, e, "cannot read directory %s", dir);
	}
    } else {
	do {
	    if (wcscmp(found.cFileName, L".") == 0
		    || wcscmp(found.cFileName, L"..") == 0) {
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
	    if ((list[count] = Narrow(found.cFileName)) == NULL) {
		goto nomem;
	    }
	    count++;
	} while (FindNextFileW(h, &found));
	e = GetLastError();
	FindClose(h);
	if (e != ERROR_NO_MORE_FILES) {
	    if (list != NULL) {
		list[count] = NULL;
		plat_free_list(list);
	    }
	    return Fail(err, e, "cannot read directory %s", dir);
	}
    }
    if (list == NULL && (list = malloc(sizeof(char *))) == NULL) {
	return Fail(err, ERROR_NOT_ENOUGH_MEMORY, "cannot read directory %s", dir);
    }
    list[count] = NULL;
    qsort(list, count, sizeof(char *), CompareNames);
    *names = list;
    return 0;

  nomem:
    FindClose(h);
    if (list != NULL) {
	list[count] = NULL;
	plat_free_list(list);
    }
    return Fail(err, ERROR_NOT_ENOUGH_MEMORY, "cannot read directory %s", dir);
}

/* plat_free_list -- frees a plat_list_dir result. */
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

/*
 * TakeLock --
 *	Opens (creating, owner only) the lock file and takes an exclusive
 *	lock on its first byte; with failNow, returns 1 at once if another
 *	handle holds it.
 */
static int
TakeLock(const char *path, int failNow, PlatLock *lock, PlatError *err)
{
    wchar_t *wpath = Widen(path);
    SECURITY_ATTRIBUTES saBuf, *sa;
    OVERLAPPED ov;
    HANDLE h;

    lock->handle = -1;
    if (wpath == NULL) {
	return Fail(err, GetLastError(), "cannot open lock file %s", path);
    }
    sa = OwnerOnly(0600, 0, &saBuf);
    h = CreateFileW(wpath, GENERIC_READ | GENERIC_WRITE,
	    FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, sa,
	    OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
    FreeSecurity(sa);
    free(wpath);
    if (h == INVALID_HANDLE_VALUE) {
	return Fail(err, GetLastError(), "cannot open lock file %s", path);
    }
    memset(&ov, 0, sizeof(ov));
    if (!LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK
	    | (failNow ? LOCKFILE_FAIL_IMMEDIATELY : 0), 0, 1, 0, &ov)) {
	DWORD e = GetLastError();

	CloseHandle(h);
	if (e == ERROR_LOCK_VIOLATION || e == ERROR_IO_PENDING) {
	    Fail(err, 0, "%s is locked by another process", path);
	    return 1;
	}
	return Fail(err, e, "cannot lock %s", path);
    }
    lock->handle = (intptr_t) h;
    return 0;
}

/* plat_lock_exclusive -- waits for the lock. */
int
plat_lock_exclusive(const char *path, PlatLock *lock, PlatError *err)
{
    return TakeLock(path, 0, lock, err);
}

/* plat_lock_try -- returns 1 at once if another handle holds the lock. */
int
plat_lock_try(const char *path, PlatLock *lock, PlatError *err)
{
    return TakeLock(path, 1, lock, err);
}

/* plat_unlock -- releases the lock and closes its handle. */
void
plat_unlock(PlatLock *lock)
{
    if (lock->handle != -1) {
	HANDLE h = (HANDLE) lock->handle;
	OVERLAPPED ov;

	memset(&ov, 0, sizeof(ov));
	UnlockFileEx(h, 0, 1, 0, &ov);
	CloseHandle(h);
	lock->handle = -1;
    }
}

/*
 * GetEnv --
 *	An environment variable as malloc'ed UTF-8 (read through the wide
 *	API, so non-ASCII values survive), or NULL if unset or empty.
 */
static char *
GetEnv(const wchar_t *name)
{
    DWORD n = GetEnvironmentVariableW(name, NULL, 0);
    wchar_t *wide;
    char *value;

    if (n <= 1 || (wide = malloc(n * sizeof(wchar_t))) == NULL) {
	return NULL;
    }
    if (GetEnvironmentVariableW(name, wide, n) == 0) {
	free(wide);
	return NULL;
    }
    value = Narrow(wide);
    free(wide);
    return value;
}

/*
 * plat_home_dir --
 *	HOME, else HOMEDRIVE+HOMEPATH, else USERPROFILE (as Tcl finds ~).
 */
char *
plat_home_dir(void)
{
    char *home = GetEnv(L"HOME");
    char *drive, *path;

    if (home != NULL) {
	return home;
    }
    drive = GetEnv(L"HOMEDRIVE");
    path = GetEnv(L"HOMEPATH");
    if (drive != NULL && path != NULL) {
	size_t a = strlen(drive), b = strlen(path);

	home = malloc(a + b + 1);
	if (home != NULL) {
	    memcpy(home, drive, a);
	    memcpy(home + a, path, b + 1);
	}
    }
    free(drive);
    free(path);
    return home != NULL ? home : GetEnv(L"USERPROFILE");
}

/* plat_spps_home -- SPPS_HOME, else <home>/.spps. */
char *
plat_spps_home(void)
{
    char *env = GetEnv(L"SPPS_HOME");
    char *home, *dir;

    if (env != NULL) {
	return env;
    }
    home = plat_home_dir();
    if (home == NULL) {
	return NULL;
    }
    dir = plat_join(home, ".spps");
    free(home);
    return dir;
}

/* plat_join -- dir/name, with no doubled separator. */
char *
plat_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    int sep = !(a > 0 && (dir[a - 1] == '/' || dir[a - 1] == '\\'));
    char *path = malloc(a + b + 2);

    if (path != NULL) {
	memcpy(path, dir, a);
	if (sep) {
	    path[a] = '/';
	}
	memcpy(path + a + sep, name, b + 1);
    }
    return path;
}

/* plat_pid -- GetCurrentProcessId. */
long
plat_pid(void)
{
    return (long) GetCurrentProcessId();
}

/* plat_fork_generation -- Windows has no fork: it never changes. */
unsigned long
plat_fork_generation(void)
{
    return 0;
}

/* plat_mutex_init -- an SRW lock in the PlatMutex. */
void
plat_mutex_init(PlatMutex *mutex)
{
    InitializeSRWLock((PSRWLOCK) &mutex->srw);
}

/* plat_mutex_lock -- exclusive acquire. */
void
plat_mutex_lock(PlatMutex *mutex)
{
    AcquireSRWLockExclusive((PSRWLOCK) &mutex->srw);
}

/* plat_mutex_unlock -- exclusive release. */
void
plat_mutex_unlock(PlatMutex *mutex)
{
    ReleaseSRWLockExclusive((PSRWLOCK) &mutex->srw);
}

/* plat_mutex_destroy -- nothing to free. */
void
plat_mutex_destroy(PlatMutex *mutex)
{
    /* An SRW lock holds no resource. */
    (void) mutex;
}
