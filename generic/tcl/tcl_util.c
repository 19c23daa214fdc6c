/*
 * tcl_util.c --
 *
 *	The mechanisms shared by every spps command: errors with
 *	{SPPS ...} error codes, table-driven option parsing with the
 *	messages of Microchip's tools, and the per-interpreter tool log.
 *	See spps_tcl.h.
 */

#include "spps_tcl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

int
Spps_ErrorObj(Tcl_Interp *interp, Tcl_Obj *codeWords, Tcl_Obj *message)
{
    Tcl_Obj *code = Tcl_NewStringObj("SPPS", -1);

    code = Tcl_NewListObj(1, &code);
    Tcl_IncrRefCount(codeWords);
    if (Tcl_ListObjAppendList(NULL, code, codeWords) != TCL_OK) {
	Tcl_ListObjAppendElement(NULL, code, codeWords);
    }
    Tcl_DecrRefCount(codeWords);
    Tcl_SetObjResult(interp, message);
    Tcl_SetObjErrorCode(interp, code);
    return TCL_ERROR;
}

int
Spps_Error(Tcl_Interp *interp, const char *errorCode, const char *fmt, ...)
{
    va_list ap;
    Tcl_Obj *message;
    char buf[1024];
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n >= (int) sizeof(buf)) {
	/* Rare: format again into a buffer of the right size. */
	char *big = Tcl_Alloc((unsigned) n + 1);

	va_start(ap, fmt);
	vsnprintf(big, (size_t) n + 1, fmt, ap);
	va_end(ap);
	message = Tcl_NewStringObj(big, n);
	Tcl_Free(big);
    } else {
	message = Tcl_NewStringObj(buf, -1);
    }
    return Spps_ErrorObj(interp, Tcl_NewStringObj(errorCode, -1), message);
}

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

int
Spps_GetBoolean(Tcl_Obj *value)
{
    static const char *const truths[] = {"1", "true", "yes", NULL};
    static const char *const lies[] = {"0", "false", "no", NULL};
    const char *s = Tcl_GetString(value);
    int i;

    for (i = 0; truths[i] != NULL; i++) {
	if (strcasecmp(s, truths[i]) == 0) {
	    return 1;
	}
	if (strcasecmp(s, lies[i]) == 0) {
	    return 0;
	}
    }
    return -1;
}

static const SppsOption *
FindOption(const SppsOption *table, const char *name, int *index)
{
    int i;

    for (i = 0; table[i].name != NULL; i++) {
	if (strcmp(table[i].name, name) == 0
		|| (table[i].alias != NULL && strcmp(table[i].alias, name) == 0)) {
	    *index = i;
	    return &table[i];
	}
    }
    return NULL;
}

static int
IllegalValue(Tcl_Interp *interp, const char *name)
{
    return Spps_ErrorObj(interp,
	    Tcl_ObjPrintf("OPTION VALUE %s", name),
	    Tcl_ObjPrintf("Parameter '%s' has illegal value.", name));
}

static int
BadBoolean(Tcl_Interp *interp, const char *name, Tcl_Obj *value)
{
    return Spps_ErrorObj(interp,
	    Tcl_ObjPrintf("OPTION VALUE %s", name),
	    Tcl_ObjPrintf("%s: Invalid argument value: '%s' (expecting TRUE, "
		    "1, true, FALSE, 0 or false).", name, Tcl_GetString(value)));
}

void
Spps_FreeOptionValues(const SppsOption *table, Tcl_Obj **values)
{
    int i;

    for (i = 0; table[i].name != NULL; i++) {
	if (values[i] != NULL) {
	    Tcl_DecrRefCount(values[i]);
	    values[i] = NULL;
	}
    }
}

int
Spps_ParseOptions(Tcl_Interp *interp, const char *usage,
	const SppsOption *table, int first, int objc, Tcl_Obj *const objv[],
	Tcl_Obj **values)
{
    int i, idx, b;

    for (i = 0; table[i].name != NULL; i++) {
	values[i] = NULL;
    }
    for (i = first; i < objc; i++) {
	const char *word = Tcl_GetString(objv[i]);
	const SppsOption *opt;
	Tcl_Obj *value, *v;

	/* The tools' references print an en dash in places; accept it. */
	if (strncmp(word, "\xE2\x80\x93", 3) == 0) {
	    word += 3;
	} else if (word[0] == '-') {
	    word++;
	} else {
	    word = NULL;
	}
	opt = word ? FindOption(table, word, &idx) : NULL;
	if (opt == NULL) {
	    const char *shown = word ? word : Tcl_GetString(objv[i]);

	    Spps_ErrorObj(interp, Tcl_ObjPrintf("OPTION UNKNOWN {%s}", shown),
		    Tcl_ObjPrintf("Parameter '%s' is not defined. Valid command "
			    "formatting is '%s'.", shown, usage));
	    goto error;
	}
	if (opt->type == SPPS_OPT_FLAG) {
	    /* A bare flag unless the next word is a boolean. */
	    b = 1;
	    if (i + 1 < objc && (b = Spps_GetBoolean(objv[i + 1])) >= 0) {
		i++;
	    } else {
		b = 1;
	    }
	    value = Tcl_NewBooleanObj(b);
	} else {
	    if (i + 1 >= objc) {
		Spps_ErrorObj(interp,
			Tcl_ObjPrintf("OPTION MISSING %s", opt->name),
			Tcl_ObjPrintf("Parameter '%s' has no value. Valid command "
				"formatting is '%s'.", opt->name, usage));
		goto error;
	    }
	    v = objv[++i];
	    switch (opt->type) {
	    case SPPS_OPT_BOOL:
		if ((b = Spps_GetBoolean(v)) < 0) {
		    BadBoolean(interp, opt->name, v);
		    goto error;
		}
		value = Tcl_NewBooleanObj(b);
		break;
	    case SPPS_OPT_INT: {
		Tcl_WideInt w;

		if (Tcl_GetWideIntFromObj(NULL, v, &w) != TCL_OK) {
		    IllegalValue(interp, opt->name);
		    goto error;
		}
		value = Tcl_NewWideIntObj(w);
		break;
	    }
	    case SPPS_OPT_ENUM: {
		const char *s = Tcl_GetString(v);
		int c;

		value = NULL;
		for (c = 0; opt->choices[c] != NULL; c++) {
		    if (strcasecmp(s, opt->choices[c]) == 0) {
			value = Tcl_NewStringObj(opt->choices[c], -1);
			break;
		    }
		}
		if (value == NULL) {
		    IllegalValue(interp, opt->name);
		    goto error;
		}
		break;
	    }
	    case SPPS_OPT_LIST:
		/* Repeatable: the list we hold is unshared; append in place. */
		if (values[idx] != NULL) {
		    Tcl_ListObjAppendElement(NULL, values[idx], v);
		    continue;
		}
		value = Tcl_NewListObj(1, &v);
		break;
	    default:
		value = v;
		break;
	    }
	}
	if (values[idx] != NULL) {
	    /* Given twice: the last one wins, as in the tools. */
	    Tcl_DecrRefCount(values[idx]);
	}
	values[idx] = value;
	Tcl_IncrRefCount(value);
    }
    for (i = 0; table[i].name != NULL; i++) {
	if (table[i].required && values[i] == NULL) {
	    Spps_ErrorObj(interp,
		    Tcl_ObjPrintf("OPTION MISSING %s", table[i].name),
		    Tcl_ObjPrintf("Required parameter '%s' is missing.",
			    table[i].name));
	    goto error;
	}
    }
    return TCL_OK;

  error:
    Spps_FreeOptionValues(table, values);
    return TCL_ERROR;
}

/* ------------------------------------------------------------------ */
/* Log                                                                  */
/* ------------------------------------------------------------------ */

#define LOG_KEY "spps::log"

typedef struct SppsLog {
    Tcl_Obj *lines;		/* list of every line so far */
    Tcl_Obj *echo;		/* name of the echo channel, or NULL */
    Tcl_Obj *copy;		/* name of a second sink (a log file), or NULL */
} SppsLog;

static void
LogDelete(ClientData clientData, Tcl_Interp *interp)
{
    SppsLog *log = clientData;

    (void) interp;
    Tcl_DecrRefCount(log->lines);
    if (log->echo != NULL) {
	Tcl_DecrRefCount(log->echo);
    }
    if (log->copy != NULL) {
	Tcl_DecrRefCount(log->copy);
    }
    Tcl_Free((char *) log);
}

static SppsLog *
GetLog(Tcl_Interp *interp)
{
    SppsLog *log = Tcl_GetAssocData(interp, LOG_KEY, NULL);

    if (log == NULL) {
	log = (SppsLog *) Tcl_Alloc(sizeof(SppsLog));
	log->lines = Tcl_NewListObj(0, NULL);
	Tcl_IncrRefCount(log->lines);
	log->echo = Tcl_NewStringObj("stdout", -1);
	Tcl_IncrRefCount(log->echo);
	log->copy = NULL;
	Tcl_SetAssocData(interp, LOG_KEY, LogDelete, log);
    }
    return log;
}

/* Writes one line to the channel named by sink (if any), flushed at once
 * so that a crash loses no line already logged. */
static void
SinkLine(Tcl_Interp *interp, Tcl_Obj *sink, Tcl_Obj *line)
{
    Tcl_Channel chan;

    if (sink == NULL
	    || (chan = Tcl_GetChannel(interp, Tcl_GetString(sink), NULL)) == NULL) {
	return;
    }
    Tcl_WriteObj(chan, line);
    Tcl_WriteChars(chan, "\n", 1);
    Tcl_Flush(chan);
}

static void
LogOneLine(Tcl_Interp *interp, SppsLog *log, Tcl_Obj *line)
{
    if (Tcl_IsShared(log->lines)) {
	Tcl_Obj *copy = Tcl_DuplicateObj(log->lines);

	Tcl_DecrRefCount(log->lines);
	log->lines = copy;
	Tcl_IncrRefCount(copy);
    }
    Tcl_ListObjAppendElement(NULL, log->lines, line);
    SinkLine(interp, log->echo, line);
    SinkLine(interp, log->copy, line);
}

void
Spps_LogObj(Tcl_Interp *interp, Tcl_Obj *text)
{
    SppsLog *log = GetLog(interp);
    Tcl_Obj **parts;
    int n, i;
    Tcl_Obj *split;

    Tcl_IncrRefCount(text);
    if (strchr(Tcl_GetString(text), '\n') == NULL) {
	LogOneLine(interp, log, text);
    } else {
	split = Tcl_NewListObj(0, NULL);
	Tcl_IncrRefCount(split);
	{
	    const char *s = Tcl_GetString(text), *nl;

	    while ((nl = strchr(s, '\n')) != NULL) {
		Tcl_ListObjAppendElement(NULL, split,
			Tcl_NewStringObj(s, (int) (nl - s)));
		s = nl + 1;
	    }
	    if (*s != '\0') {
		Tcl_ListObjAppendElement(NULL, split, Tcl_NewStringObj(s, -1));
	    }
	}
	Tcl_ListObjGetElements(NULL, split, &n, &parts);
	for (i = 0; i < n; i++) {
	    LogOneLine(interp, log, parts[i]);
	}
	Tcl_DecrRefCount(split);
    }
    Tcl_DecrRefCount(text);
}

void
Spps_Log(Tcl_Interp *interp, const char *fmt, ...)
{
    va_list ap;
    char buf[2048];
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n >= (int) sizeof(buf)) {
	char *big = Tcl_Alloc((unsigned) n + 1);

	va_start(ap, fmt);
	vsnprintf(big, (size_t) n + 1, fmt, ap);
	va_end(ap);
	Spps_LogObj(interp, Tcl_NewStringObj(big, n));
	Tcl_Free(big);
    } else {
	Spps_LogObj(interp, Tcl_NewStringObj(buf, -1));
    }
}

void
Spps_LogSucceeded(Tcl_Interp *interp, const char *cmd)
{
    Spps_Log(interp, "The '%s' command succeeded.", cmd);
}

Tcl_Obj *
Spps_LogLines(Tcl_Interp *interp)
{
    return Tcl_DuplicateObj(GetLog(interp)->lines);
}

/*
 * spps::log configure ?-echo channel? ?-copy channel? | lines | clear | write text
 */
static int
LogObjCmd(ClientData clientData, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const char *const subs[] = {"clear", "configure", "lines", "write", NULL};
    enum { LOG_CLEAR, LOG_CONFIGURE, LOG_LINES, LOG_WRITE };
    SppsLog *log = GetLog(interp);
    int sub;

    (void) clientData;
    if (objc < 2) {
	Tcl_WrongNumArgs(interp, 1, objv, "subcommand ?arg ...?");
	return TCL_ERROR;
    }
    if (Tcl_GetIndexFromObj(interp, objv[1], subs, "subcommand", 0, &sub) != TCL_OK) {
	return TCL_ERROR;
    }
    switch (sub) {
    case LOG_CLEAR:
	if (objc != 2) {
	    Tcl_WrongNumArgs(interp, 2, objv, NULL);
	    return TCL_ERROR;
	}
	Tcl_DecrRefCount(log->lines);
	log->lines = Tcl_NewListObj(0, NULL);
	Tcl_IncrRefCount(log->lines);
	return TCL_OK;
    case LOG_LINES:
	if (objc != 2) {
	    Tcl_WrongNumArgs(interp, 2, objv, NULL);
	    return TCL_ERROR;
	}
	Tcl_SetObjResult(interp, Spps_LogLines(interp));
	return TCL_OK;
    case LOG_WRITE:
	if (objc != 3) {
	    Tcl_WrongNumArgs(interp, 2, objv, "text");
	    return TCL_ERROR;
	}
	Spps_LogObj(interp, objv[2]);
	return TCL_OK;
    case LOG_CONFIGURE: {
	static const char *const opts[] = {"-copy", "-echo", NULL};
	int i, opt;

	if (objc == 2) {
	    Tcl_SetObjResult(interp, Tcl_ObjPrintf("-copy {%s} -echo {%s}",
		    log->copy ? Tcl_GetString(log->copy) : "",
		    log->echo ? Tcl_GetString(log->echo) : ""));
	    return TCL_OK;
	}
	if (objc % 2) {
	    Tcl_WrongNumArgs(interp, 2, objv, "?-echo channel? ?-copy channel?");
	    return TCL_ERROR;
	}
	/* Check every option first: a bad one changes nothing. */
	for (i = 2; i < objc; i += 2) {
	    if (Tcl_GetIndexFromObj(interp, objv[i], opts, "option", 0, &opt) != TCL_OK
		    || (Tcl_GetString(objv[i + 1])[0] != '\0'
			&& Tcl_GetChannel(interp, Tcl_GetString(objv[i + 1]), NULL) == NULL)) {
		return TCL_ERROR;
	    }
	}
	for (i = 2; i < objc; i += 2) {
	    Tcl_Obj **slot;

	    Tcl_GetIndexFromObj(NULL, objv[i], opts, "option", 0, &opt);
	    slot = opt == 0 ? &log->copy : &log->echo;
	    if (*slot != NULL) {
		Tcl_DecrRefCount(*slot);
		*slot = NULL;
	    }
	    if (Tcl_GetString(objv[i + 1])[0] != '\0') {
		*slot = objv[i + 1];
		Tcl_IncrRefCount(*slot);
	    }
	}
	return TCL_OK;
    }
    }
    return TCL_ERROR;
}

int
SppsLog_Init(Tcl_Interp *interp)
{
    GetLog(interp);
    Tcl_CreateObjCommand(interp, "::spps::log", LogObjCmd, NULL, NULL);
    return TCL_OK;
}
