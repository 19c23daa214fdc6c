/*
 * tcl_fpexpress.h --
 *
 *	Internals shared by the files of the FlashPro Express command set
 *	(tcl_fpexpress*.c, doc/fpexpress.n): the per-interpreter session
 *	(settings, the M-HSM, the bench, the open job project, the programmer
 *	list) and the helpers every command uses.
 *
 *	This layer holds handles only: keys stay in the M-HSM role
 *	(roles/role_mhsm.h) and in the simulated devices (sim/sim.h).  The
 *	one exception is the MAC key of the project and settings files, which
 *	role_mac_key hands out for exactly that use and which is cleansed at
 *	once.
 */

#ifndef SPPS_TCL_FPEXPRESS_H
#define SPPS_TCL_FPEXPRESS_H

#include <time.h>

#include "spps_tcl.h"
#include "plat.h"
#include "proto/proto.h"
#include "proto/proto_fpe.h"
#include "roles/role_common.h"
#include "roles/role_mhsm.h"
#include "sim/sim.h"

/* The job project open in a session. */
typedef struct FpeOpenProject {
    char *path;			/* absolute path of the .pro */
    FpeProject p;
    ProtoJob job;		/* checked by the M-HSM at open */
    int dirty;
} FpeOpenProject;

/* A programmer as this session sees it. */
typedef struct FpePrg {
    char name[SIM_NAME_MAX + 1];
    char type[16];
    int enabled;
} FpePrg;

/*
 * FpeSession --
 *	Per interpreter (assoc data "spps::fpexpress").
 */
typedef struct FpeSession {
    int settingsLoaded;		/* tried to load */
    int hasSettings;		/* an HSM server is set */
    FpeSettings settings;
    RoleHsm *hsm;		/* the HSM of settings.server, or NULL */
    RoleMhsm *mhsm;
    SimBench *bench;
    FpeOpenProject *project;	/* NULL: none open */
    int connected;		/* the programmer list was read */
    size_t nPrg;
    FpePrg *prg;
    Tcl_Obj *history;		/* commands run, for export_script */
    Tcl_Obj *prgConfig;		/* dict: configure_flashpro*_prg settings */
} FpeSession;

FpeSession *FpeGetSession(Tcl_Interp *interp);

/* A command of the set (data: its client data, usually NULL). */
typedef struct FpeCommand {
    const char *name;
    Tcl_ObjCmdProc *proc;
    const void *data;
} FpeCommand;

extern const FpeCommand fpeMainCommands[];	/* tcl_fpexpress.c */
extern const FpeCommand fpeRunCommands[];	/* tcl_fpexpress_run.c */

/* Option parsing from objv[1]. */
#define FPE_PARSE(interp, usage, table, objc, objv, values) \
    Spps_ParseOptions((interp), (usage), (table), 1, (objc), (objv), (values))

/* The string of an option value, or NULL. */
#define FPE_STR(v) ((v) != NULL ? Tcl_GetString(v) : NULL)

/* An empty line of the log (the tool separates its blocks with them). */
#define FPE_BLANK(interp) Spps_LogObj((interp), Tcl_NewObj())

/* ------------------------------------------------------------------ */
/* Helpers (tcl_fpexpress.c)                                            */
/* ------------------------------------------------------------------ */

/*
 * FpeRequireMhsm --
 *	Loads the settings and opens the M-HSM they name.  Errors:
 *	"Cannot get HSM. ..." {SPPS HSMPARAMS NONE} when set_hsm_params was
 *	never run; {SPPS HSMPARAMS CORRUPT path}; {SPPS MHSM <COND>}.
 */
int FpeRequireMhsm(Tcl_Interp *interp, FpeSession *s);

/* FpeRequireProject -- "Fpeng error: Chain manager not set" {SPPS PROJECT
 * NONE} unless a job project is open. */
int FpeRequireProject(Tcl_Interp *interp, FpeSession *s, const char *cmd);

/* FpeRequireBench -- opens the simulated bench ({SPPS BENCH FAIL}). */
int FpeRequireBench(Tcl_Interp *interp, FpeSession *s);

/*
 * FpeConnect --
 *	Reads the programmers of the bench into the session's list and logs
 *	each ("programmer '93688' : FlashPro4").  When the bench has none,
 *	connects programmer 93688 (FlashPro4) with a blank board of die
 *	first (if die is not NULL): FlashPro Express needs hardware.
 */
int FpeConnect(Tcl_Interp *interp, FpeSession *s, const char *die, int log);

/* FpeFindPrg -- the session's programmer of that name, or NULL. */
FpePrg *FpeFindPrg(FpeSession *s, const char *name);

/* FpeNoPrg -- "The programmer with name 'x' does not exist."
 * {SPPS PROGRAMMER UNKNOWN x}. */
int FpeNoPrg(Tcl_Interp *interp, const char *name);

/* FpeNormalizePath -- an absolute, normalised path (Tcl_Free). */
char *FpeNormalizePath(Tcl_Interp *interp, const char *path);

/*
 * FpeReadFile --
 *	Reads an input file named by option opt: a missing file is the tools'
 *	"Parameter 'opt' : the file 'path' does not exist." {SPPS FILE
 *	NOTFOUND path}; other failures {SPPS FILE IO path}.  *data is
 *	malloc'ed.
 */
int FpeReadFile(Tcl_Interp *interp, const char *opt, const char *path,
	size_t maxLen, uint8_t **data, size_t *len);

/* FpeWriteFile -- atomic, durable write; {SPPS FILE IO path} on failure. */
int FpeWriteFile(Tcl_Interp *interp, const char *path, const uint8_t *data,
	size_t len, int mode);

/* FpeCheckWritable -- the directory of path exists ({SPPS FILE NOTFOUND}). */
int FpeCheckWritable(Tcl_Interp *interp, const char *opt, const char *path);

/* FpeMhsmError -- a RoleMhsmFail as {SPPS area COND ?detail?}. */
int FpeMhsmError(Tcl_Interp *interp, const char *area, int fail,
	const char *detail, const ProtoError *err);

/* FpeSaveProject -- writes the open project (MAC under the M-HSM's HSM). */
int FpeSaveProject(Tcl_Interp *interp, FpeSession *s);

/* FpeHistory -- records a command for export_script. */
void FpeHistory(FpeSession *s, int objc, Tcl_Obj *const objv[]);

/* FpeTicketForAction -- index of the job ticket of device and action,
 * or -1. */
int FpeTicketForAction(const ProtoJob *job, const char *device,
	const char *action);

/* FpeIdHex -- a ticket id as 40 hex digits. */
void FpeIdHex(const uint8_t id[PROTO_TICKET_ID], char out[2 * PROTO_TICKET_ID + 1]);

/* FpeLocalTime -- t as local time, formatted by strftime's fmt. */
void FpeLocalTime(time_t t, const char *fmt, char *buf, size_t len);

/* FpeCanonDie -- a die's canonical name (sim_die_canon), or the name. */
void FpeCanonDie(const char *die, char out[32]);

#endif /* SPPS_TCL_FPEXPRESS_H */
