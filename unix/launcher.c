/*
 * launcher.c --
 *
 *	The jobmgr and FPExpress programs: a tclsh with the spps packages
 *	linked in and the tool's command set loaded.  Built twice, with
 *	SPPS_LAUNCHER_jobmgr or SPPS_LAUNCHER_fpexpress defined (the same
 *	file serves Windows, where win/makefile.vc builds jobmgr.exe and
 *	FPExpress.exe with UNICODE defined).
 *
 *	Command lines, as Microchip's tools take them:
 *
 *	  jobmgr SCRIPT:a.tcl ?SCRIPT:b.tcl ...? ?"SCRIPT_ARGS:w1 w2"?
 *	         ?SCRIPT_DIR:dir? ?LOGFILE:file?
 *		Runs the scripts in order in one interpreter (one tool
 *		session), each ending with the log line "The Execute Script
 *		command succeeded." or its error and "The Execute Script
 *		command failed."; stops at the first failure.  Exit status 0
 *		if every script succeeded, 1 otherwise, 2 for a bad command
 *		line; "exit N" in a script ends the program with N.
 *	  jobmgr ?SCRIPT_ARGS:..? ?SCRIPT_DIR:..? ?LOGFILE:..?
 *		An interactive shell with the tool's commands.
 *	  jobmgr file.tcl ?arg ...?
 *		As tclsh would run file.tcl, with the tool's commands.
 *
 *	Keywords are taken in any case (script:, Script:).  Relative
 *	SCRIPT: and LOGFILE: paths are taken from the directory the
 *	program was started in; SCRIPT_DIR: is the working directory the
 *	scripts then run in.  LOGFILE: gets a copy of every tool log line
 *	(spps::log), written and flushed line by line.
 */

#ifdef _WIN32
#ifndef UNICODE
#define UNICODE
#endif
#ifndef _UNICODE
#define _UNICODE
#endif
#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tcl.h>
#include "tcl/spps_tcl.h"

#if defined(SPPS_LAUNCHER_jobmgr)
#define TOOL_PACKAGE	"jobmgr"
#define TOOL_NAME	"jobmgr"
#elif defined(SPPS_LAUNCHER_fpexpress)
#define TOOL_PACKAGE	"fpexpress"
#define TOOL_NAME	"FPExpress"
#else
#error "define SPPS_LAUNCHER_jobmgr or SPPS_LAUNCHER_fpexpress"
#endif

#ifndef S_ISREG
#define S_ISREG(m)	(((m) & S_IFMT) == S_IFREG)
#endif

/* Exit statuses of the SCRIPT: mode. */
#define EXIT_USAGE	2

#ifdef _WIN32
typedef wchar_t ArgChar;	/* wmain's arguments */
#else
typedef char ArgChar;
#endif

/*
 * What the command line asked for.  Filled by ParseToolArgs; read by
 * RunScripts and, in the interactive shell, by AppInit (Tcl_Main gives it
 * no other way in).
 */
typedef struct LaunchOptions {
    int toolMode;		/* 1: KEYWORD:value arguments were given */
    Tcl_Obj *scripts;		/* list of SCRIPT: paths, made absolute */
    Tcl_Obj *scriptArgs;	/* list of SCRIPT_ARGS: words, or NULL */
    Tcl_Obj *scriptDir;		/* SCRIPT_DIR:, or NULL */
    Tcl_Obj *logFile;		/* LOGFILE:, made absolute, or NULL */
} LaunchOptions;

static LaunchOptions options;

static const char usage[] =
    "usage: " TOOL_NAME " SCRIPT:file.tcl ?SCRIPT:file.tcl ...?"
    " ?\"SCRIPT_ARGS:arg ...\"? ?SCRIPT_DIR:dir? ?LOGFILE:file?\n"
    "       " TOOL_NAME " ?\"SCRIPT_ARGS:arg ...\"? ?SCRIPT_DIR:dir?"
    " ?LOGFILE:file?     (interactive shell)\n"
    "       " TOOL_NAME " file.tcl ?arg ...?     (as tclsh)\n"
    "Keywords are taken in any case.  Exit status: 0 when every script"
    " succeeded,\n1 when one failed, 2 for a bad command line, N for"
    " \"exit N\" in a script.\n";

/*
 * Declares the statically linked packages and keeps them declared.  Tcl's
 * package unknown handler sources every pkgIndex.tcl on auto_path, and an
 * installed or built libspps would then replace the "load {}" scripts:
 * "package require fpexpress" in jobmgr would load a second copy of the
 * library, with a second engine handle table.  The wrapper puts the static
 * scripts back after every scan.
 */
static const char staticPackagesScript[] =
    "namespace eval ::spps::launcher {\n"
    "    proc static {} {\n"
    "        foreach {p init} {spps Spps jobmgr Jobmgr fpexpress Fpexpress} {\n"
    "            package ifneeded $p " PACKAGE_VERSION " [list load {} $init]\n"
    "        }\n"
    "    }\n"
    "    proc unknown {next args} {\n"
    "        try {\n"
    "            if {[llength $next]} {uplevel 1 [list {*}$next {*}$args]}\n"
    "        } finally {\n"
    "            static\n"
    "        }\n"
    "    }\n"
    "    static\n"
    "    package unknown [list ::spps::launcher::unknown [package unknown]]\n"
    "}\n";

/* ------------------------------------------------------------------ */
/* The LOGFILE: sink                                                    */
/* ------------------------------------------------------------------ */

/*
 * OpenLogFile --
 *	Opens (truncates) the LOGFILE: file, copies into it the lines logged
 *	so far, and makes it the tool log's copy sink (spps::log configure
 *	-copy), which writes and flushes each line as it is logged, so a
 *	crash loses no line already logged.
 */
static int
OpenLogFile(Tcl_Interp *interp, Tcl_Obj *path)
{
    Tcl_Channel file;
    Tcl_Obj *lines, **linev, *cmd;
    int n, i, code;

    file = Tcl_FSOpenFileChannel(interp, path, "w", 0644);
    if (file == NULL) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("cannot open LOGFILE \"%s\": %s",
		Tcl_GetString(path), Tcl_PosixError(interp)));
	return TCL_ERROR;
    }
    Tcl_RegisterChannel(interp, file);
    Tcl_SetChannelOption(NULL, file, "-encoding", "utf-8");
    Tcl_SetChannelOption(NULL, file, "-translation", "lf");

    lines = Spps_LogLines(interp);
    Tcl_IncrRefCount(lines);
    Tcl_ListObjGetElements(NULL, lines, &n, &linev);
    for (i = 0; i < n; i++) {
	Tcl_WriteObj(file, linev[i]);
	Tcl_WriteChars(file, "\n", 1);
    }
    Tcl_DecrRefCount(lines);
    Tcl_Flush(file);

    cmd = Tcl_ObjPrintf("::spps::log configure -copy %s",
	    Tcl_GetChannelName(file));
    Tcl_IncrRefCount(cmd);
    code = Tcl_EvalObjEx(interp, cmd, TCL_EVAL_GLOBAL);
    Tcl_DecrRefCount(cmd);
    return code;
}

/* ------------------------------------------------------------------ */
/* Interpreter set-up                                                   */
/* ------------------------------------------------------------------ */

/*
 * SetArgv --
 *	argv and argc for the scripts; argv0 is set per script.
 */
static void
SetArgv(Tcl_Interp *interp, Tcl_Obj *words)
{
    int n = 0;

    if (words == NULL) {
	words = Tcl_NewObj();
    }
    Tcl_ListObjLength(NULL, words, &n);
    Tcl_SetVar2Ex(interp, "argv", NULL, words, TCL_GLOBAL_ONLY);
    Tcl_SetVar2Ex(interp, "argc", NULL, Tcl_NewIntObj(n), TCL_GLOBAL_ONLY);
}

/*
 * InitTool --
 *	Tcl_Init, the static packages, the LOGFILE: sink and the tool's
 *	package: after it the interpreter is a tool session.
 */
static int
InitTool(Tcl_Interp *interp)
{
    if (Tcl_Init(interp) != TCL_OK) {
	return TCL_ERROR;
    }
    /* Spps_Init registers the tool packages (Jobmgr, Fpexpress) itself. */
    Tcl_StaticPackage(NULL, "Spps", Spps_Init, Spps_SafeInit);
    if (Tcl_EvalEx(interp, staticPackagesScript, -1, TCL_EVAL_GLOBAL) != TCL_OK
	    || Tcl_EvalEx(interp, "package require spps", -1,
		    TCL_EVAL_GLOBAL) != TCL_OK) {
	return TCL_ERROR;
    }
    if (options.logFile != NULL && OpenLogFile(interp, options.logFile) != TCL_OK) {
	return TCL_ERROR;
    }
    return Tcl_EvalEx(interp, "package require " TOOL_PACKAGE, -1,
	    TCL_EVAL_GLOBAL);
}

/*
 * ChangeDir --
 *	The SCRIPT_DIR: step: the scripts run in that directory.
 */
static int
ChangeDir(Tcl_Interp *interp, Tcl_Obj *dir)
{
    if (Tcl_FSChdir(dir) != 0) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf(
		"cannot change to SCRIPT_DIR \"%s\": %s", Tcl_GetString(dir),
		Tcl_PosixError(interp)));
	return TCL_ERROR;
    }
    return TCL_OK;
}

/*
 * Fatal --
 *	Reports a failed start (the interpreter's result, and errorInfo when
 *	it says more) on stderr and ends the program with status 1.
 */
static void
Fatal(Tcl_Interp *interp, const char *what)
{
    Tcl_Channel err = Tcl_GetStdChannel(TCL_STDERR);
    Tcl_Channel out = Tcl_GetStdChannel(TCL_STDOUT);

    if (out != NULL) {
	Tcl_Flush(out);
    }
    if (err != NULL) {
	Tcl_WriteChars(err, TOOL_NAME ": ", -1);
	Tcl_WriteChars(err, what, -1);
	Tcl_WriteChars(err, ": ", -1);
	Tcl_WriteObj(err, Tcl_GetObjResult(interp));
	Tcl_WriteChars(err, "\n", 1);
	Tcl_Flush(err);
    }
    Tcl_Exit(1);
}

/*
 * AppInit --
 *	Tcl_Main's initialisation, for the interactive shell and the tclsh
 *	mode: the tool session, then SCRIPT_ARGS: and SCRIPT_DIR: if given.
 *	A LOGFILE: or SCRIPT_DIR: that cannot be used ends the program
 *	rather than leave a shell that does not do what was asked.
 */
static int
AppInit(Tcl_Interp *interp)
{
    if (InitTool(interp) != TCL_OK) {
	if (options.toolMode) {
	    Fatal(interp, "cannot start");
	}
	return TCL_ERROR;
    }
    if (options.scriptArgs != NULL) {
	SetArgv(interp, options.scriptArgs);
    }
    if (options.scriptDir != NULL && ChangeDir(interp, options.scriptDir) != TCL_OK) {
	Fatal(interp, "cannot start");
    }
    return TCL_OK;
}

/* ------------------------------------------------------------------ */
/* SCRIPT: mode                                                         */
/* ------------------------------------------------------------------ */

/*
 * ScriptFailed --
 *	Logs a failed script run: "Error: <message>" and "The Execute Script
 *	command failed."; errorInfo goes to stderr.
 */
static void
ScriptFailed(Tcl_Interp *interp, int code)
{
    Tcl_Obj *opts, *key, *info = NULL, *msg;
    Tcl_Channel err = Tcl_GetStdChannel(TCL_STDERR);
    const char *text;

    if (code == TCL_BREAK || code == TCL_CONTINUE) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf(
		"invoked \"%s\" outside of a loop",
		code == TCL_BREAK ? "break" : "continue"));
    } else if (code != TCL_ERROR) {
	Tcl_SetObjResult(interp, Tcl_ObjPrintf(
		"script ended with return code %d", code));
    }
    msg = Tcl_GetObjResult(interp);
    Tcl_IncrRefCount(msg);
    opts = Tcl_GetReturnOptions(interp, code);
    Tcl_IncrRefCount(opts);
    key = Tcl_NewStringObj("-errorinfo", -1);
    Tcl_IncrRefCount(key);
    Tcl_DictObjGet(NULL, opts, key, &info);
    Tcl_DecrRefCount(key);

    text = Tcl_GetString(msg);
    if (strncmp(text, "Error", 5) == 0) {
	Spps_LogObj(interp, msg);
    } else {
	Spps_Log(interp, "Error: %s", text);
    }
    if (err != NULL) {
	Tcl_WriteObj(err, info != NULL ? info : msg);
	Tcl_WriteChars(err, "\n", 1);
	Tcl_Flush(err);
    }
    Spps_Log(interp, "The Execute Script command failed.");
    Tcl_DecrRefCount(opts);
    Tcl_DecrRefCount(msg);
}

/*
 * CheckScripts --
 *	Every SCRIPT: must be a readable file before the first one runs, so
 *	a misspelt last script does not leave the session half done.
 */
static int
CheckScripts(Tcl_Interp *interp)
{
    Tcl_Obj **scriptv;
    int n, i;

    Tcl_ListObjGetElements(NULL, options.scripts, &n, &scriptv);
    for (i = 0; i < n; i++) {
	Tcl_StatBuf *st = Tcl_AllocStatBuf();
	Tcl_Channel chan;
	int ok = Tcl_FSStat(scriptv[i], st) == 0;

	if (!ok) {
	    Tcl_SetErrno(errno);
	} else if (!S_ISREG(Tcl_GetModeFromStat(st))) {
	    ckfree((char *) st);
	    Tcl_SetObjResult(interp, Tcl_ObjPrintf(
		    "cannot run script \"%s\": not a file",
		    Tcl_GetString(scriptv[i])));
	    return TCL_ERROR;
	}
	ckfree((char *) st);
	if (ok) {
	    chan = Tcl_FSOpenFileChannel(interp, scriptv[i], "r", 0);
	    ok = chan != NULL;
	    if (ok) {
		Tcl_Close(NULL, chan);
	    }
	}
	if (!ok) {
	    Tcl_SetObjResult(interp, Tcl_ObjPrintf(
		    "cannot run script \"%s\": %s", Tcl_GetString(scriptv[i]),
		    Tcl_PosixError(interp)));
	    return TCL_ERROR;
	}
    }
    return TCL_OK;
}

/*
 * RunScripts --
 *	The SCRIPT: mode: one tool session running every script in order.
 *	Returns the exit status.
 */
static int
RunScripts(void)
{
    Tcl_Interp *interp = Tcl_CreateInterp();
    Tcl_Obj **scriptv;
    int n, i, code, status = 0;

    Tcl_SetVar2(interp, "tcl_interactive", NULL, "0", TCL_GLOBAL_ONLY);
    Tcl_ListObjGetElements(NULL, options.scripts, &n, &scriptv);
    Tcl_SetVar2Ex(interp, "argv0", NULL, scriptv[0], TCL_GLOBAL_ONLY);
    SetArgv(interp, options.scriptArgs);
    if (InitTool(interp) != TCL_OK) {
	Fatal(interp, "cannot start");
    }
    if (CheckScripts(interp) != TCL_OK
	    || (options.scriptDir != NULL
		    && ChangeDir(interp, options.scriptDir) != TCL_OK)) {
	ScriptFailed(interp, TCL_ERROR);
	status = 1;
    }
    for (i = 0; i < n && status == 0; i++) {
	Tcl_SetVar2Ex(interp, "argv0", NULL, scriptv[i], TCL_GLOBAL_ONLY);
	code = Tcl_FSEvalFileEx(interp, scriptv[i], NULL);
	if (code == TCL_OK) {
	    Spps_Log(interp, "The Execute Script command succeeded.");
	} else {
	    ScriptFailed(interp, code);
	    status = 1;
	}
    }
    Tcl_DeleteInterp(interp);
    return status;
}

/* ------------------------------------------------------------------ */
/* Command line                                                         */
/* ------------------------------------------------------------------ */

/*
 * ArgToObj --
 *	A command-line argument as a Tcl string: from the system encoding
 *	on POSIX, from UTF-16 on Windows.
 */
static Tcl_Obj *
ArgToObj(const ArgChar *arg)
{
    Tcl_DString ds;
    Tcl_Obj *obj;

#ifdef _WIN32
    int len = WideCharToMultiByte(CP_UTF8, 0, arg, -1, NULL, 0, NULL, NULL);

    Tcl_DStringInit(&ds);
    if (len > 0) {
	Tcl_DStringSetLength(&ds, len);
	WideCharToMultiByte(CP_UTF8, 0, arg, -1, Tcl_DStringValue(&ds), len,
		NULL, NULL);
	Tcl_DStringSetLength(&ds, len - 1);
    }
#else
    Tcl_ExternalToUtfDString(NULL, arg, -1, &ds);
#endif
    obj = Tcl_NewStringObj(Tcl_DStringValue(&ds), Tcl_DStringLength(&ds));
    Tcl_DStringFree(&ds);
    return obj;
}

/*
 * KeywordLength --
 *	The length of "KEYWORD" if arg starts with "KEYWORD:" (a letter, then
 *	at least one more letter, digit or underscore), else 0.  One letter
 *	and a colon is a Windows drive ("C:\x.tcl"), not a keyword.
 */
static int
KeywordLength(const char *arg)
{
    int i;

    if (!((arg[0] >= 'A' && arg[0] <= 'Z') || (arg[0] >= 'a' && arg[0] <= 'z'))) {
	return 0;
    }
    for (i = 1; arg[i] != '\0' && arg[i] != ':'; i++) {
	char c = arg[i];

	if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
		|| (c >= '0' && c <= '9') || c == '_')) {
	    return 0;
	}
    }
    return (arg[i] == ':' && i >= 2) ? i : 0;
}

/*
 * UsageError --
 *	Reports a bad command line and exits with EXIT_USAGE.
 */
static void
UsageError(Tcl_Obj *msg)
{
    Tcl_IncrRefCount(msg);
    fprintf(stderr, "%s: %s\n%s", TOOL_NAME, Tcl_GetString(msg), usage);
    Tcl_DecrRefCount(msg);
    exit(EXIT_USAGE);
}

/*
 * AbsolutePath --
 *	path made absolute against the starting directory (SCRIPT_DIR:
 *	changes the working directory later).
 */
static Tcl_Obj *
AbsolutePath(Tcl_Obj *path)
{
    Tcl_Obj *norm, *copy;

    Tcl_IncrRefCount(path);
    norm = Tcl_FSGetNormalizedPath(NULL, path);
    copy = Tcl_DuplicateObj(norm != NULL ? norm : path);
    Tcl_DecrRefCount(path);
    return copy;
}

/*
 * SplitWords --
 *	SCRIPT_ARGS: words: separated by white space, as the tools' script
 *	dialogs take them.  Not a Tcl list: "C:\job\a.job" keeps its
 *	backslashes.
 */
static Tcl_Obj *
SplitWords(const char *text)
{
    Tcl_Obj *words = Tcl_NewListObj(0, NULL);
    const char *p = text, *start;

    for (;;) {
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
	    p++;
	}
	if (*p == '\0') {
	    break;
	}
	start = p;
	while (*p != '\0' && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
	    p++;
	}
	Tcl_ListObjAppendElement(NULL, words,
		Tcl_NewStringObj(start, (int) (p - start)));
    }
    return words;
}

/*
 * SetOnce --
 *	Stores the value of a keyword that may be given once.
 */
static void
SetOnce(Tcl_Obj **slot, const char *keyword, Tcl_Obj *value)
{
    if (*slot != NULL) {
	UsageError(Tcl_ObjPrintf("%s: given twice", keyword));
    }
    *slot = value;
    Tcl_IncrRefCount(value);
}

/*
 * ParseToolArgs --
 *	Fills options from KEYWORD:value arguments.  A value wrapped in
 *	double quotes (left by some callers) loses them.
 */
static void
ParseToolArgs(int argc, ArgChar **argv)
{
    static const char *const keywords[] = {
	"SCRIPT", "SCRIPT_ARGS", "SCRIPT_DIR", "LOGFILE", NULL
    };
    enum { KW_SCRIPT, KW_SCRIPT_ARGS, KW_SCRIPT_DIR, KW_LOGFILE };
    int i;

    options.toolMode = 1;
    options.scripts = Tcl_NewListObj(0, NULL);
    Tcl_IncrRefCount(options.scripts);
    for (i = 1; i < argc; i++) {
	Tcl_Obj *arg = ArgToObj(argv[i]);
	const char *s;
	int kwLen, k, valLen;
	Tcl_Obj *value;

	Tcl_IncrRefCount(arg);
	s = Tcl_GetString(arg);
	kwLen = KeywordLength(s);
	if (kwLen == 0) {
	    UsageError(Tcl_ObjPrintf("argument \"%s\" is not KEYWORD:value"
		    " (after a SCRIPT:-style argument every argument is one)", s));
	}
	for (k = 0; keywords[k] != NULL; k++) {
	    if ((int) strlen(keywords[k]) == kwLen
		    && Tcl_UtfNcasecmp(keywords[k], s, (unsigned long) kwLen) == 0) {
		break;
	    }
	}
	if (keywords[k] == NULL) {
	    UsageError(Tcl_ObjPrintf("unknown argument \"%s\": expected"
		    " SCRIPT:, SCRIPT_ARGS:, SCRIPT_DIR: or LOGFILE:", s));
	}
	s += kwLen + 1;
	valLen = (int) strlen(s);
	if (valLen >= 2 && s[0] == '"' && s[valLen - 1] == '"') {
	    s++;
	    valLen -= 2;
	}
	value = Tcl_NewStringObj(s, valLen);
	if (valLen == 0 && k != KW_SCRIPT_ARGS) {
	    UsageError(Tcl_ObjPrintf("%s: needs a value", keywords[k]));
	}
	switch (k) {
	case KW_SCRIPT:
	    Tcl_ListObjAppendElement(NULL, options.scripts, AbsolutePath(value));
	    break;
	case KW_SCRIPT_ARGS:
	    SetOnce(&options.scriptArgs, "SCRIPT_ARGS", SplitWords(Tcl_GetString(value)));
	    Tcl_DecrRefCount(value);
	    break;
	case KW_SCRIPT_DIR:
	    SetOnce(&options.scriptDir, "SCRIPT_DIR", value);
	    break;
	case KW_LOGFILE:
	    SetOnce(&options.logFile, "LOGFILE", AbsolutePath(value));
	    break;
	}
	Tcl_DecrRefCount(arg);
    }
}

/*
 * main (wmain on Windows) --
 *	SCRIPT: mode if the first argument is KEYWORD:value, else Tcl_Main
 *	(interactive shell, or a plain script as tclsh runs it).
 */
#ifdef _WIN32
int wmain(int argc, wchar_t *argv[]);

int
wmain(int argc, wchar_t *argv[])
#else
int
main(int argc, char *argv[])
#endif
{
    int nScripts = 0;

    Tcl_FindExecutable((const char *) argv[0]);
    if (argc > 1) {
	Tcl_Obj *first = ArgToObj(argv[1]);
	const char *s;

	Tcl_IncrRefCount(first);
	s = Tcl_GetString(first);
	if (strcmp(s, "-help") == 0 || strcmp(s, "--help") == 0
		|| strcmp(s, "-h") == 0) {
	    fputs(usage, stdout);
	    return 0;
	}
	if (KeywordLength(s) > 0) {
	    ParseToolArgs(argc, argv);
	}
	Tcl_DecrRefCount(first);
    }
    if (options.toolMode) {
	Tcl_ListObjLength(NULL, options.scripts, &nScripts);
    }
    if (nScripts > 0) {
	Tcl_Exit(RunScripts());
    }
    if (options.toolMode) {
	/* No SCRIPT:: the interactive shell with the other keywords. */
	argc = 1;
    }
    Tcl_Main(argc, argv, AppInit);
    return 0;
}
