/*
 * tcl_jobmgr.h --
 *
 *	Internals shared by the files of the Job Manager command set
 *	(tcl_jobmgr*.c, doc/jobmgr.n): the per-interpreter session (open
 *	project, U-HSM, settings), and the helpers every command uses for
 *	errors, paths, files and the project's persistence.
 *
 *	This layer holds handles and wrapped blobs only: keys stay in the
 *	U-HSM role (roles/role_uhsm.h).  The one exception is the MAC key of
 *	the project and settings files, which role_mac_key hands out for
 *	exactly that use and which is cleansed at once.
 */

#ifndef SPPS_TCL_JOBMGR_H
#define SPPS_TCL_JOBMGR_H

#include "spps_tcl.h"
#include "plat.h"
#include "proto/proto.h"
#include "proto/proto_jm.h"
#include "roles/role_common.h"
#include "roles/role_uhsm.h"

/*
 * JmSession --
 *	Per interpreter (assoc data "spps::jobmgr"): what a Job Manager
 *	session has open.
 */
typedef struct JmSession {
    /* set_hsm_params, loaded from SPPS_HOME on first need */
    int settingsLoaded;		/* tried to load */
    int hasSettings;
    JmSettings settings;
    RoleHsm *hsm;		/* the U-HSM of settings.server, or NULL */
    RoleUhsm *uhsm;
    /* the open project */
    JmProject *project;		/* NULL: none open */
    char *projectPath;		/* absolute path of the .jprj */
    PlatLock lock;		/* <path>.lock, held while open */
    int dirty;			/* changed since last saved */
} JmSession;

JmSession *JmGetSession(Tcl_Interp *interp);

/* A command of the set: name and procedure. */
typedef struct JmCommand {
    const char *name;
    Tcl_ObjCmdProc *proc;
} JmCommand;

/* Command tables of the files (NULL-terminated). */
extern const JmCommand jmProjectCommands[];	/* tcl_jobmgr.c */
extern const JmCommand jmHsmCommands[];		/* tcl_jobmgr_hsm.c */
extern const JmCommand jmDataCommands[];	/* tcl_jobmgr_data.c */
extern const JmCommand jmJobCommands[];		/* tcl_jobmgr_job.c */
extern const JmCommand jmTaskCommands[];	/* tcl_jobmgr_task.c */

/* ------------------------------------------------------------------ */
/* Helpers (tcl_jobmgr.c)                                               */
/* ------------------------------------------------------------------ */

/* Option parsing with the command's usage; values as Spps_ParseOptions. */
#define JM_PARSE(interp, usage, table, objc, objv, values) \
    Spps_ParseOptions((interp), (usage), (table), 1, (objc), (objv), (values))

/* JmRequireProject -- TCL_OK if a project is open, else the error
 * {SPPS PROJECT NONE} naming the command. */
int JmRequireProject(Tcl_Interp *interp, JmSession *s, const char *cmd);

/*
 * JmRequireUhsm --
 *	Loads the settings (if not yet) and opens the U-HSM they name.  Errors:
 *	{SPPS HSMPARAMS NONE} when set_hsm_params was never run,
 *	{SPPS HSMPARAMS CORRUPT path}, {SPPS UHSM ...}.
 */
int JmRequireUhsm(Tcl_Interp *interp, JmSession *s, const char *cmd);

/* JmSaveProject -- writes the open project atomically and durably. */
int JmSaveProject(Tcl_Interp *interp, JmSession *s);

/* JmNormalizePath -- an absolute, normalised path (a new string, Tcl_Free). */
char *JmNormalizePath(Tcl_Interp *interp, const char *path);

/*
 * JmReadFile --
 *	Reads an input file named by option opt: a missing file is the tools'
 *	"Parameter 'opt' : the file 'path' does not exist." {SPPS FILE NOTFOUND
 *	path}; other failures {SPPS FILE IO path}.  *data is malloc'ed.
 */
int JmReadFile(Tcl_Interp *interp, const char *opt, const char *path,
	size_t maxLen, uint8_t **data, size_t *len);

/* JmWriteFile -- atomic, durable write; {SPPS FILE IO path} on failure. */
int JmWriteFile(Tcl_Interp *interp, const char *path, const uint8_t *data,
	size_t len, int mode);

/* JmRoleError -- maps a RoleFail to "SPPS <area> <COND> <detail>". */
int JmRoleError(Tcl_Interp *interp, const char *area, RoleFail why,
	const char *detail, const ProtoError *err);

/* JmCheckName -- a name for a project element: non-empty, at most 256
 * bytes, no control characters.  {SPPS OPTION VALUE opt}. */
int JmCheckName(Tcl_Interp *interp, const char *opt, Tcl_Obj *value);

/* JmRequireKeysetDir -- the U-HSM and a keyset directory are set
 * ({SPPS HSMPARAMS NOKEYSETDIR} otherwise). */
int JmRequireKeysetDir(Tcl_Interp *interp, JmSession *s, const char *cmd);
/* JmKeysetPath -- the path of a keyset named by option opt: a bare file
 * name in the keyset directory ({SPPS OPTION VALUE opt} otherwise);
 * *path is malloc'ed. */
int JmKeysetPath(Tcl_Interp *interp, JmSession *s, const char *opt,
	Tcl_Obj *value, char **path);

/* JmFindJob -- the job of that name, or {SPPS JOB UNKNOWN name}. */
int JmFindJob(Tcl_Interp *interp, JmSession *s, const char *cmd,
	const char *name, JmJob **job);

/* JmFormatTime -- "2026-11-23 09:02:00 UTC" into buf. */
void JmFormatTime(uint64_t t, char *buf, size_t len);

/* Growing arrays: *arr has *n elements of size; one more, zeroed. */
void *JmGrow(void **arr, size_t *n, size_t size);
/* Removes element i of an array of *n elements of size. */
void JmRemoveAt(void *arr, size_t *n, size_t size, size_t i);

/* The string of an option value, or NULL. */
#define JM_STR(v) ((v) != NULL ? Tcl_GetString(v) : NULL)

#endif /* SPPS_TCL_JOBMGR_H */
