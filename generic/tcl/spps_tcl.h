/*
 * spps_tcl.h --
 *
 *	Shared declarations of the Tcl layer (generic/tcl/): package init
 *	functions of each command set, and the three mechanisms every command
 *	uses so that all of them behave alike:
 *
 *	- errors:  Spps_Error sets the result and -errorcode {SPPS AREA COND ...};
 *	- options: Spps_ParseOptions parses "-name value" options from a table,
 *	           with the messages and value forms of Microchip's tools;
 *	- log:     Spps_Log appends to the interpreter's tool log (what
 *	           save_log writes, what the launchers print).
 *
 *	This layer holds handles and wrapped blobs only; it never sees a key.
 */

#ifndef SPPS_TCL_H
#define SPPS_TCL_H

#include <tcl.h>

/* ------------------------------------------------------------------ */
/* Package init (one shared library, three packages)                    */
/* ------------------------------------------------------------------ */

/* Exported; see pkgIndex.tcl.in. */
DLLEXPORT int Spps_Init(Tcl_Interp *interp);
DLLEXPORT int Spps_SafeInit(Tcl_Interp *interp);
DLLEXPORT int Jobmgr_Init(Tcl_Interp *interp);
DLLEXPORT int Fpexpress_Init(Tcl_Interp *interp);

/* Per-area command registration, called by Spps_Init.  Each creates its
 * commands in its namespace and returns TCL_OK or TCL_ERROR. */
int SppsHsm_Init(Tcl_Interp *interp);		/* tcl_hsm.c:  spps::hsm */
int SppsLog_Init(Tcl_Interp *interp);		/* tcl_util.c: spps::log */
int SppsJdc_Init(Tcl_Interp *interp);		/* tcl_jdc.c:  spps::jdc */
/* Job Manager commands in the global namespace (tcl_jobmgr.c), for Jobmgr_Init. */
int SppsJobmgr_Init(Tcl_Interp *interp);
int SppsSim_Init(Tcl_Interp *interp);		/* tcl_sim.c:  spps::sim */
/* FlashPro Express commands in the global namespace (tcl_fpexpress.c),
 * for Fpexpress_Init. */
int SppsFpexpress_Init(Tcl_Interp *interp);

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

/*
 * Spps_Error --
 *	Sets the interpreter result to the formatted message and -errorcode
 *	to the list {SPPS area condition ?detail ...?}; the variable
 *	arguments after fmt's own are not taken: give the detail words in
 *	the errorCode string, space-separated and list-quoted as needed, e.g.
 *	    Spps_Error(interp, "TICKET EXHAUSTED MyTicket1",
 *	        "ticket '%s' has no authorization codes left", name);
 *	Returns TCL_ERROR, so callers can "return Spps_Error(...)".
 */
int Spps_Error(Tcl_Interp *interp, const char *errorCode, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(printf, 3, 4)))
#endif
	;

/*
 * Spps_ErrorObj --
 *	As Spps_Error, with an errorCode given as a list object of the words
 *	after SPPS (e.g. {FILE CORRUPT /path/with spaces}).
 */
int Spps_ErrorObj(Tcl_Interp *interp, Tcl_Obj *codeWords, Tcl_Obj *message);

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

typedef enum {
    SPPS_OPT_STRING,	/* any value */
    SPPS_OPT_BOOL,	/* TRUE 1 true YES FALSE 0 false NO, any case */
    SPPS_OPT_FLAG,	/* bare flag, or followed by a boolean value */
    SPPS_OPT_INT,	/* an integer (see min/max) */
    SPPS_OPT_ENUM,	/* one of choices, any case; value is the choice */
    SPPS_OPT_LIST	/* repeatable; values collected in a list */
} SppsOptType;

typedef struct SppsOption {
    const char *name;		/* without the dash: "job_name" */
    SppsOptType type;
    int required;		/* 1: "Required parameter 'x' is missing." */
    const char *const *choices;	/* SPPS_OPT_ENUM: NULL-terminated */
    const char *alias;		/* another spelling of the same option, or NULL */
} SppsOption;

/*
 * Spps_ParseOptions --
 *	Parses objv[first..objc-1] as options of table (terminated by an
 *	entry with name NULL).  values must have room for one Tcl_Obj * per
 *	table entry; it receives NULL for options not given, else:
 *	  STRING/ENUM: the value (ENUM: the canonical choice);
 *	  BOOL/FLAG:   a boolean object (0 or 1);
 *	  INT:         an integer object;
 *	  LIST:        a list of every value given.
 *	Options may come in any order.  On error it leaves the tools' message:
 *	  Required parameter 'x' is missing.              {SPPS OPTION MISSING x}
 *	  Parameter 'x' is not defined. Valid command formatting is '<usage>'.
 *	                                                  {SPPS OPTION UNKNOWN x}
 *	  x: Invalid argument value: 'v' (expecting TRUE, 1, true, FALSE, 0 or false).
 *	                                                  {SPPS OPTION VALUE x}
 *	  Parameter 'x' has illegal value.                {SPPS OPTION VALUE x}
 *	The values are owned by the caller's references: call
 *	Spps_FreeOptionValues when done.
 */
int Spps_ParseOptions(Tcl_Interp *interp, const char *usage,
	const SppsOption *table, int first, int objc, Tcl_Obj *const objv[],
	Tcl_Obj **values);
void Spps_FreeOptionValues(const SppsOption *table, Tcl_Obj **values);

/* Spps_GetBoolean -- a boolean in the tools' forms (see SPPS_OPT_BOOL);
 * returns 0 or 1, or -1 if value is not one. */
int Spps_GetBoolean(Tcl_Obj *value);

/* ------------------------------------------------------------------ */
/* Log                                                                  */
/* ------------------------------------------------------------------ */

/*
 * Each interpreter has one tool log: the lines a real Job Manager or
 * FlashPro Express would show in its log window.  Lines are kept (for
 * save_log), echoed to a channel (stdout by default) and copied to a
 * second one if set (the launchers' LOGFILE:).  From Tcl:
 *     spps::log configure ?-echo channel|""? ?-copy channel|""?
 *     spps::log lines ; spps::log clear ; spps::log write text
 */
void Spps_Log(Tcl_Interp *interp, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(printf, 2, 3)))
#endif
	;
/* Spps_LogObj -- one line (or several, split on newlines). */
void Spps_LogObj(Tcl_Interp *interp, Tcl_Obj *line);
/* Spps_LogSucceeded -- "The '<cmd>' command succeeded." */
void Spps_LogSucceeded(Tcl_Interp *interp, const char *cmd);
/* Spps_LogLines -- the log so far, as a list of lines (a new object). */
Tcl_Obj *Spps_LogLines(Tcl_Interp *interp);

#endif /* SPPS_TCL_H */
