/*
 * tcl_fpexpress_run.c --
 *
 *	FlashPro Express with hardware: connecting programmers, running
 *	actions (the device <-> M-HSM protocol of docs/PROTOCOL.md,
 *	"Programming a device"), job status, the end of a job, and the
 *	programmer commands.  The hardware is the simulated bench (sim.h).
 *
 *	run_selected_actions returns 0 when every selected action succeeded.
 *	A refused or failed action is a Tcl error whose error code is the
 *	cause's ({SPPS TICKET EXHAUSTED <id> ...}) with the action's exit
 *	code as its last word (doc/fpexpress.n lists them).
 */

#include "tcl_fpexpress.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/sim_factory.h"

#define DEFAULT_PROGRAMMER "93688"

/* Exit codes of an action (doc/fpexpress.n, run_selected_actions). */
enum {
    EXIT_OK = 0,
    EXIT_INTERNAL = 1,		/* HSM, bench or file failure */
    EXIT_PROGRAMMER = 2,	/* no programmer, unknown or disabled */
    EXIT_NO_DEVICE = 3,		/* no device on the chain, or not the chain */
    EXIT_DEVICE_TYPE = 4,	/* another die, or a key mode it cannot do */
    EXIT_AUTH = 5,		/* device authenticity check failed */
    EXIT_EXHAUSTED = 6,		/* no authorization code left */
    EXIT_TICKET = 7,		/* ticket ended or not loaded */
    EXIT_REFUSED = 8,		/* the device refused code or bitstream */
    EXIT_VERIFY = 9,		/* VERIFY or VERIFY_DIGEST found a difference */
    EXIT_LOST = 10,		/* the board was pulled during the action */
    EXIT_COC = 11		/* the M-HSM refused the device's CoC */
};

/* ------------------------------------------------------------------ */
/* Programmers                                                          */
/* ------------------------------------------------------------------ */

/*
 * FpeFindPrg --
 *	A programmer of the session's list, or NULL.
 */
FpePrg *
FpeFindPrg(FpeSession *s, const char *name)
{
    size_t i;

    for (i = 0; i < s->nPrg; i++) {
	if (strcmp(s->prg[i].name, name) == 0) {
	    return &s->prg[i];
	}
    }
    return NULL;
}

/*
 * FpeNoPrg --
 *	The tool's message for an unknown programmer.
 */
int
FpeNoPrg(Tcl_Interp *interp, const char *name)
{
    return Spps_ErrorObj(interp, Tcl_ObjPrintf("PROGRAMMER UNKNOWN {%s}", name),
	    Tcl_ObjPrintf("The programmer with name '%s' does not exist.", name));
}

/*
 * BenchError --
 *	A bench refusal as a Tcl error.
 */
static int
BenchError(Tcl_Interp *interp, const SimError *err)
{
    switch (err->cond) {
    case SIM_NO_PROGRAMMER:
	return Spps_Error(interp, "PROGRAMMER UNKNOWN", "%s", err->e.msg);
    case SIM_PROGRAMMER_EXISTS:
	return Spps_Error(interp, "PROGRAMMER EXISTS", "%s", err->e.msg);
    case SIM_BAD_VALUE:
	return Spps_Error(interp, "BENCH VALUE", "%s", err->e.msg);
    default:
	return Spps_Error(interp, "BENCH FAIL", "%s", err->e.msg);
    }
}

/*
 * FpeConnect --
 *	Reads the bench's programmers into the session (tcl_fpexpress.h).
 */
int
FpeConnect(Tcl_Interp *interp, FpeSession *s, const char *die, int log)
{
    SimProgrammer *list = NULL, p;
    SimError err;
    FpePrg *prg;
    uint8_t dsn[PROTO_DSN];
    size_t n = 0, i;

    if (FpeRequireBench(interp, s) != TCL_OK) {
	return TCL_ERROR;
    }
    if (sim_programmer_list(s->bench, &list, &n, &err) != 0) {
	return BenchError(interp, &err);
    }
    if (n == 0 && die != NULL) {
	/* FlashPro Express needs hardware: the tutorial's programmer. */
	if (sim_programmer_add(s->bench, DEFAULT_PROGRAMMER, "FlashPro4", &p,
		&err) != 0
		|| sim_board_insert(s->bench, DEFAULT_PROGRAMMER, die, NULL, dsn,
			NULL, &err) != 0
		|| sim_programmer_list(s->bench, &list, &n, &err) != 0) {
	    return BenchError(interp, &err);
	}
    }
    if ((prg = calloc(n > 0 ? n : 1, sizeof(*prg))) == NULL) {
	free(list);
	return Spps_Error(interp, "BENCH FAIL", "out of memory");
    }
    for (i = 0; i < n; i++) {
	FpePrg *old = FpeFindPrg(s, list[i].name);

	snprintf(prg[i].name, sizeof(prg[i].name), "%s", list[i].name);
	snprintf(prg[i].type, sizeof(prg[i].type), "%s", list[i].type);
	prg[i].enabled = old != NULL ? old->enabled : 1;
	if (log) {
	    Spps_Log(interp, "programmer '%s' : %s", list[i].name, list[i].type);
	}
    }
    free(s->prg);
    s->prg = prg;
    s->nPrg = n;
    s->connected = 1;
    free(list);
    return TCL_OK;
}

/* Connects once per session (for commands that need the list). */
static int
NeedConnected(Tcl_Interp *interp, FpeSession *s)
{
    char die[32];

    if (s->connected) {
	return TCL_OK;
    }
    if (s->project != NULL && s->project->job.nDevices > 0) {
	FpeCanonDie(s->project->job.devices[0].die, die);
	return FpeConnect(interp, s, die, 1);
    }
    return FpeConnect(interp, s, NULL, 1);
}

/* ------------------------------------------------------------------ */
/* Running an action                                                    */
/* ------------------------------------------------------------------ */

/* Why an action failed: the error to raise, and its exit code. */
typedef struct Failure {
    int exit;
    Tcl_Obj *code;		/* words after SPPS, without the exit code */
    Tcl_Obj *msg;
} Failure;

/*
 * Fail --
 *	Records why an action failed: exit code, error code, message.
 */
static int
Fail(Failure *f, int exit, Tcl_Obj *code, Tcl_Obj *msg)
{
    f->exit = exit;
    f->code = code;
    f->msg = msg;
    Tcl_IncrRefCount(code);
    Tcl_IncrRefCount(msg);
    return exit;
}

/*
 * FailSim --
 *	A device's refusal as an action failure.
 */
static int
FailSim(Failure *f, const SimError *err, const uint8_t *dsn, const char *prg)
{
    char hex[2 * PROTO_DSN + 1] = "";

    if (dsn != NULL) {
	sim_dsn_format(dsn, hex);
    }
    switch (err->cond) {
    case SIM_NO_BOARD:
    case SIM_NO_DEVICE:
	return Fail(f, EXIT_NO_DEVICE, Tcl_ObjPrintf("DEVICE NONE {%s}", prg),
		Tcl_NewStringObj(err->e.msg, -1));
    case SIM_PULLED:
	return Fail(f, EXIT_LOST, Tcl_ObjPrintf("DEVICE LOST %s", hex),
		Tcl_NewStringObj(err->e.msg, -1));
    case SIM_REFUSED:
	return Fail(f, EXIT_REFUSED, Tcl_ObjPrintf("DEVICE REFUSED %s", hex),
		Tcl_ObjPrintf("device %s: %s", hex, err->e.msg));
    case SIM_VERIFY:
	return Fail(f, EXIT_VERIFY, Tcl_ObjPrintf("DEVICE VERIFY %s", hex),
		Tcl_ObjPrintf("device %s: %s", hex, err->e.msg));
    case SIM_NO_PROGRAMMER:
	return Fail(f, EXIT_PROGRAMMER, Tcl_ObjPrintf("PROGRAMMER UNKNOWN {%s}",
		prg), Tcl_NewStringObj(err->e.msg, -1));
    default:
	return Fail(f, EXIT_INTERNAL, Tcl_NewStringObj("BENCH FAIL", -1),
		Tcl_NewStringObj(err->e.msg, -1));
    }
}

/*
 * FailMhsm --
 *	An M-HSM refusal as an action failure.
 */
static int
FailMhsm(Failure *f, int fail, const ProtoError *err, const uint8_t *dsn,
	const uint8_t *ticketId)
{
    char dhex[2 * PROTO_DSN + 1] = "", thex[2 * PROTO_TICKET_ID + 1] = "";
    Tcl_Obj *msg = Tcl_NewStringObj(err->msg, -1);
    const char *cond = role_mhsm_fail_name(fail);

    if (dsn != NULL) {
	sim_dsn_format(dsn, dhex);
    }
    if (ticketId != NULL) {
	FpeIdHex(ticketId, thex);
    }
    switch (fail) {
    case ROLE_MHSM_AUTH:
	return Fail(f, EXIT_AUTH, Tcl_ObjPrintf("DEVICE AUTH %s", dhex), msg);
    case ROLE_MHSM_DIE:
	return Fail(f, EXIT_DEVICE_TYPE, Tcl_ObjPrintf("DEVICE DIE %s", dhex),
		msg);
    case ROLE_MHSM_KEY_MODE:
	return Fail(f, EXIT_DEVICE_TYPE, Tcl_ObjPrintf("DEVICE KEY_MODE %s",
		dhex), msg);
    case ROLE_MHSM_EXHAUSTED:
	return Fail(f, EXIT_EXHAUSTED, Tcl_ObjPrintf("TICKET EXHAUSTED %s",
		thex), msg);
    case ROLE_MHSM_ENDED:
    case ROLE_MHSM_NOT_LOADED:
	return Fail(f, EXIT_TICKET, Tcl_ObjPrintf("TICKET %s %s", cond, thex),
		msg);
    case ROLE_MHSM_COC:
	return Fail(f, EXIT_COC, Tcl_ObjPrintf("DEVICE COC %s", dhex), msg);
    default:
	return Fail(f, EXIT_INTERNAL, Tcl_ObjPrintf("MHSM %s", cond), msg);
    }
}

/*
 * LogPrg --
 *	A line of the log for a programmer: "programmer 'X' : ...".
 */
static void
LogPrg(Tcl_Interp *interp, const char *prg, const char *fmt, const char *text)
{
    Spps_LogObj(interp, Tcl_ObjPrintf("programmer '%s' : %s", prg,
	    Tcl_GetString(Tcl_ObjPrintf(fmt, text))));
}

/*
 * Plural --
 *	"s" unless one.
 */
static const char *
Plural(size_t n)
{
    return n == 1 ? "" : "s";
}

/*
 * DoCodedAction --
 *	PROGRAM, VERIFY or ERASE on the device of session: authenticity
 *	check, authorization code (reserved durably by the M-HSM first), the
 *	device's action, its CoC back to the M-HSM.  Logs each step.
 */
static int
DoCodedAction(Tcl_Interp *interp, FpeSession *s, SimSession *session,
	const char *prg, const SimDeviceInfo *dev, const char *action,
	const char *jobDie, Failure *f)
{
    const ProtoJob *job = &s->project->job;
    const ProtoJobTicket *ticket;
    const ProtoBitstream *bs = NULL;
    uint8_t challenge[PROTO_NONCE], *answer = NULL, *code = NULL, *coc = NULL;
    size_t answerLen = 0, codeLen = 0, cocLen = 0, i;
    char thex[2 * PROTO_TICKET_ID + 1], chex[2 * PROTO_CODE_ID + 1], left[48];
    RoleMhsmDevice mdev;
    RoleMhsmCode info, after;
    SimResult result;
    SimError serr;
    ProtoError err;
    int fail, t, rc = EXIT_OK;

    t = FpeTicketForAction(job, s->project->p.actions[0].device, action);
    if (t < 0) {
	return Fail(f, EXIT_TICKET, Tcl_NewStringObj("TICKET NONE", -1),
		Tcl_ObjPrintf("job '%s' has no ticket for action %s", job->jobName,
			action));
    }
    ticket = &job->tickets[t];
    for (i = 0; i < job->nBitstreams; i++) {
	if (strcmp(job->bitstreams[i].name, job->devices[0].bitstream) == 0) {
	    bs = &job->bitstreams[i];
	}
    }
    if (bs == NULL) {
	return Fail(f, EXIT_NO_DEVICE, Tcl_NewStringObj("JOB NOBITSTREAM", -1),
		Tcl_ObjPrintf("device '%s' of job '%s' has no bitstream",
			job->devices[0].name, job->jobName));
    }
    FpeIdHex(ticket->id, thex);

    /* 1. Authenticity check. */
    if ((fail = role_mhsm_challenge(s->mhsm, challenge, &err)) != 0) {
	return FailMhsm(f, fail, &err, dev->dsn, ticket->id);
    }
    if (sim_session_authenticate(session, challenge, &answer, &answerLen,
	    &serr) != 0) {
	return FailSim(f, &serr, dev->dsn, prg);
    }
    fail = role_mhsm_authenticate(s->mhsm, challenge, answer, answerLen,
	    jobDie, &mdev, &err);
    free(answer);
    if (fail != 0) {
	return FailMhsm(f, fail, &err, dev->dsn, ticket->id);
    }
    LogPrg(interp, prg, "Device authenticity check PASSED (%s).", mdev.hasKfp
	    ? "KFP, certified by the vendor" : "DFK factory key");

    /* 2-3. Reservation, then the code. */
    if ((fail = role_mhsm_issue_code(s->mhsm, challenge, ticket->id, &code,
	    &codeLen, &info, &err)) != 0) {
	return FailMhsm(f, fail, &err, dev->dsn, ticket->id);
    }
    if (info.maxDevices == PROTO_UNLIMITED) {
	snprintf(left, sizeof(left), "unlimited");
    } else {
	snprintf(left, sizeof(left), "%lld", (long long) (info.maxDevices
		- info.completed - info.pending));
    }
    proto_hex(info.codeId, PROTO_CODE_ID, chex);
    Spps_Log(interp, "programmer '%s' : Authorization code %s for ticket '%s' "
	    "(ID %s), key mode %s%s; authorization codes left: %s", prg, chex,
	    ticket->name, thex, info.keyMode, info.reused
	    ? ", under this device's pending reservation" : "", left);

    /* 4. The device. */
    if (sim_session_run(session, action, code, codeLen, bs, &coc, &cocLen,
	    &result, &serr) != 0) {
	free(code);
	LogPrg(interp, prg, "%s", serr.cond == SIM_PULLED
		? "The device stopped answering: its authorization code stays "
		  "reserved for it"
		: "The device did not complete the action: its authorization "
		  "code stays reserved for it");
	return FailSim(f, &serr, dev->dsn, prg);
    }
    free(code);
    if (strcmp(action, "PROGRAM") == 0) {
	if (result.erasedFirst) {
	    LogPrg(interp, prg, "%s", "Erase ...");
	    LogPrg(interp, prg, "%s", "Completed erase");
	}
	LogPrg(interp, prg, "%s", "Programming FPGA Array");
	if (result.nEnvm > 0) {
	    Spps_Log(interp, "programmer '%s' : Programming eNVM (%lu client%s)",
		    prg, (unsigned long) result.nEnvm, Plural(result.nEnvm));
	}
	Spps_Log(interp, "programmer '%s' : Programming security settings and "
		"user keys (%lu key%s)", prg, (unsigned long) result.nKeys,
		Plural(result.nKeys));
	LogPrg(interp, prg, "%s", "Verifying FPGA Array");
	LogPrg(interp, prg, "%s", "        Verifying FPGA Array -- pass");
    } else if (strcmp(action, "VERIFY") == 0) {
	LogPrg(interp, prg, "%s", "Verifying FPGA Array");
	LogPrg(interp, prg, "%s", "        Verifying FPGA Array -- pass");
    } else {
	LogPrg(interp, prg, "%s", "Erase ...");
	LogPrg(interp, prg, "%s", "Completed erase");
    }

    /* 5. The CoC back to the M-HSM. */
    fail = role_mhsm_confirm(s->mhsm, ticket->id, coc, cocLen, &after, &err);
    free(coc);
    if (fail != 0) {
	return FailMhsm(f, fail, &err, dev->dsn, ticket->id);
    }
    Spps_Log(interp, "programmer '%s' : Certificate of Conformance collected "
	    "by M-HSM %s (ticket '%s', code %s): %lld device%s done for this "
	    "ticket", prg, role_mhsm_uuid(s->mhsm), ticket->name, chex,
	    (long long) after.completed, after.completed == 1 ? "" : "s");
    return rc;
}

/* DEVICE_INFO, READ_IDCODE, VERIFY_DIGEST: no code needed. */
static int
DoCheck(Tcl_Interp *interp, SimSession *session, const char *prg,
	const char *action, const uint8_t *dsn, Failure *f)
{
    SimDeviceInfo info;
    SimError serr;
    char hex[2 * PROTO_DIGEST + 1];

    if (sim_session_check(session, action, &info, &serr) != 0) {
	return FailSim(f, &serr, dsn, prg);
    }
    Spps_Log(interp, "programmer '%s' : Family: %s  Die: %s", prg, info.family,
	    info.die);
    if (strcmp(action, "READ_IDCODE") == 0) {
	return EXIT_OK;
    }
    Spps_Log(interp, "programmer '%s' : Design: %s", prg, info.programmed
	    ? info.designName : "(blank device)");
    if (info.programmed) {
	proto_hex(info.designDigest, 8, hex);
	Spps_Log(interp, "programmer '%s' : Design digest: %s...", prg, hex);
    }
    Spps_Log(interp, "programmer '%s' : User keys: %s", prg, info.nKeys
	    ? info.keyNames : "none");
    if (strcmp(action, "VERIFY_DIGEST") == 0) {
	LogPrg(interp, prg, "%s", "Digest check PASSED.");
    }
    return EXIT_OK;
}

/*
 * RunOne --
 *	The selected action on one programmer, with the tool's log lines.
 */
static int
RunOne(Tcl_Interp *interp, FpeSession *s, const char *prg, Failure *f)
{
    FpeProject *p = &s->project->p;
    const ProtoJob *job = &s->project->job;
    const char *action = p->actions[0].action;
    SimSession *session = NULL;
    SimDeviceInfo info;
    SimError serr;
    char dsn[2 * PROTO_DSN + 1], jobDie[32], when[64];
    time_t start = time(NULL), end;
    long elapsed;
    int rc;

    memset(&info, 0, sizeof(info));
    FpeCanonDie(job->devices[0].die, jobDie);
    LogPrg(interp, prg, "%s", "Scan Chain...");
    if (sim_session_open(s->bench, prg, &session, &info, &serr) != 0) {
	LogPrg(interp, prg, "%s", "Scan Chain FAILED.");
	return FailSim(f, &serr, NULL, prg);
    }
    sim_dsn_format(info.dsn, dsn);
    if (p->nActions != 1) {
	LogPrg(interp, prg, "%s", "Scan Chain FAILED.");
	rc = Fail(f, EXIT_NO_DEVICE, Tcl_ObjPrintf("DEVICE CHAIN {%s}", prg),
		Tcl_ObjPrintf("the chain of programmer '%s' has 1 device; the "
			"job expects %lu", prg, (unsigned long) p->nActions));
	goto done;
    }
    if (strcmp(info.die, jobDie) != 0) {
	LogPrg(interp, prg, "%s", "Scan Chain FAILED.");
	rc = Fail(f, EXIT_DEVICE_TYPE, Tcl_ObjPrintf("DEVICE DIE %s", dsn),
		Tcl_ObjPrintf("the device on the chain of programmer '%s' has "
			"die %s (DSN %s); device '%s' of the job has die %s", prg, info.die,
			dsn, job->devices[0].name, jobDie));
	goto done;
    }
    LogPrg(interp, prg, "%s", "Scan Chain PASSED.");
    LogPrg(interp, prg, "Executing action %s", action);
    Spps_Log(interp, "programmer '%s' : EXPORT DSN[128] = %s", prg, dsn);
    if (!p->actions[0].enabled) {
	LogPrg(interp, prg, "%s", "Device is disabled: nothing to do.");
	rc = EXIT_OK;
    } else if (strcmp(action, "PROGRAM") == 0 || strcmp(action, "VERIFY") == 0
	    || strcmp(action, "ERASE") == 0) {
	rc = DoCodedAction(interp, s, session, prg, &info, action, jobDie, f);
    } else {
	rc = DoCheck(interp, session, prg, action, info.dsn, f);
    }
  done:
    sim_session_close(session);
    end = time(NULL);
    elapsed = (long) (end - start);
    FpeLocalTime(end, "%a %b %d %H:%M:%S %Y", when, sizeof(when));
    if (rc != EXIT_OK) {
	LogPrg(interp, prg, "Error: %s", Tcl_GetString(f->msg));
    }
    Spps_Log(interp, "programmer '%s' : Finished: %s (Elapsed time "
	    "%02ld:%02ld:%02ld)", prg, when, elapsed / 3600, elapsed / 60 % 60,
	    elapsed % 60);
    if (rc == EXIT_OK) {
	Spps_Log(interp, "programmer '%s' : Executing action %s PASSED.", prg,
		action);
    } else {
	Spps_Log(interp, "programmer '%s' : Executing action %s FAILED (exit "
		"code %d).", prg, action, rc);
    }
    FPE_BLANK(interp);
    Spps_Log(interp, "                        o - o - o - o - o - o");
    FPE_BLANK(interp);
    return rc;
}

/*
 * run_selected_actions --
 *	Runs the chosen action on the named programmers (all enabled ones
 *	when none is named).  Returns 0; the first failure is raised after
 *	every programmer ran.
 */
static int
RunSelectedActionsObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"name", SPPS_OPT_LIST, 0, NULL, NULL},
	{"force_rtg4_erase", SPPS_OPT_BOOL, 0, NULL, NULL},
	{"prog_spi_flash", SPPS_OPT_BOOL, 0, NULL, NULL},
	{"disable_prog_design", SPPS_OPT_BOOL, 0, NULL, NULL},
	{"spi_flash_image", SPPS_OPT_STRING, 0, NULL, NULL},
	{"spi_flash_action", SPPS_OPT_STRING, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[6], **names = NULL;
    Failure first;
    size_t i;
    int nNames = 0, b, ran = 0, rc = TCL_ERROR;

    (void) cd;
    memset(&first, 0, sizeof(first));
    if (FPE_PARSE(interp, "run_selected_actions [-name \"name\"] \\ "
	    "[-force_rtg4_erase \"TRUE | FALSE\"] \\ [-prog_spi_flash \"TRUE | "
	    "FALSE\"] \\ [-disable_prog_design \"TRUE | FALSE\"] \\ "
	    "[-spi_flash_image \"spi_flash_image\"] \\ [-spi_flash_action "
	    "\"spi_flash_action\"]", opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if ((v[2] != NULL && Tcl_GetBooleanFromObj(NULL, v[2], &b) == TCL_OK && b)
	    || v[4] != NULL || v[5] != NULL) {
	Spps_Error(interp, "OPTION VALUE prog_spi_flash", "SPI flash "
		"programming is not available on the simulated bench.");
	goto done;
    }
    if (FpeRequireProject(interp, s, "run_selected_actions") != TCL_OK
	    || FpeRequireMhsm(interp, s) != TCL_OK
	    || NeedConnected(interp, s) != TCL_OK) {
	goto done;
    }
    if (v[3] != NULL && Tcl_GetBooleanFromObj(NULL, v[3], &b) == TCL_OK && b) {
	Spps_Log(interp, "Device programming is disabled (-disable_prog_design): "
		"nothing to do.");
	Spps_LogSucceeded(interp, "run_selected_actions");
	Tcl_SetObjResult(interp, Tcl_NewIntObj(0));
	rc = TCL_OK;
	goto done;
    }
    if (v[0] != NULL) {
	Tcl_ListObjGetElements(NULL, v[0], &nNames, &names);
	for (i = 0; i < (size_t) nNames; i++) {
	    FpePrg *p = FpeFindPrg(s, Tcl_GetString(names[i]));

	    if (p == NULL) {
		Spps_ErrorObj(interp, Tcl_ObjPrintf("PROGRAMMER UNKNOWN {%s} %d",
			Tcl_GetString(names[i]), EXIT_PROGRAMMER),
			Tcl_ObjPrintf("The programmer with name '%s' does not "
			"exist.", Tcl_GetString(names[i])));
		goto done;
	    }
	    if (!p->enabled) {
		Spps_ErrorObj(interp, Tcl_ObjPrintf("PROGRAMMER DISABLED {%s} %d",
			p->name, EXIT_PROGRAMMER), Tcl_ObjPrintf("Programmer "
			"'%s' is disabled (enable_prg).", p->name));
		goto done;
	    }
	}
    }
    for (i = 0; i < s->nPrg; i++) {
	FpePrg *p = &s->prg[i];
	Failure f;
	int selected = names == NULL ? p->enabled : 0, k;

	for (k = 0; k < nNames; k++) {
	    selected |= strcmp(Tcl_GetString(names[k]), p->name) == 0;
	}
	if (!selected) {
	    continue;
	}
	memset(&f, 0, sizeof(f));
	ran++;
	if (RunOne(interp, s, p->name, &f) != EXIT_OK) {
	    if (first.code == NULL) {
		first = f;
	    } else {
		Tcl_DecrRefCount(f.code);
		Tcl_DecrRefCount(f.msg);
	    }
	}
    }
    if (ran == 0) {
	Spps_Error(interp, "PROGRAMMER NONE 2", "No programmer is connected "
		"(or all are disabled): run_selected_actions has nothing to run "
		"on.");
	goto done;
    }
    if (first.code != NULL) {
	Tcl_Obj *code = Tcl_DuplicateObj(first.code);

	Tcl_ListObjAppendElement(NULL, code, Tcl_NewIntObj(first.exit));
	Spps_ErrorObj(interp, code, first.msg);
	goto done;
    }
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "run_selected_actions");
    Tcl_SetObjResult(interp, Tcl_NewIntObj(EXIT_OK));
    rc = TCL_OK;
  done:
    if (first.code != NULL) {
	Tcl_DecrRefCount(first.code);
	Tcl_DecrRefCount(first.msg);
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Job status and end of job                                            */
/* ------------------------------------------------------------------ */

/* One ticket's block, as in the tutorial's figures 27 to 30. */
static void
LogTicket(Tcl_Interp *interp, const ProtoTicketStatus *t, int end)
{
    char hex[2 * PROTO_TICKET_ID + 1];

    FpeIdHex(t->id, hex);
    Spps_Log(interp, "Ticket ID: %s", hex);
    Spps_Log(interp, "Ticket Name: %s", t->name);
    Spps_Log(interp, "Device Name: %s", t->device);
    Spps_Log(interp, "Action: %s", t->action);
    if (end) {
	Spps_Log(interp, "Number of devices done: %lld",
		(long long) t->completed);
    }
    if (t->maxDevices == PROTO_UNLIMITED) {
	Spps_Log(interp, "Number of authorization codes left: unlimited");
    } else {
	Spps_Log(interp, "Number of authorization codes left: %lld",
		(long long) (t->maxDevices - t->completed - t->pending));
    }
    if (t->pending > 0) {
	Spps_Log(interp, "Number of devices in progress (code issued, not "
		"confirmed): %lld", (long long) t->pending);
    }
}

/*
 * LogCocs --
 *	The CoCs of a status, in the log.
 */
static void
LogCocs(Tcl_Interp *interp, const ProtoStatus *st)
{
    char dsn[2 * PROTO_DSN + 1], code[2 * PROTO_CODE_ID + 1];
    size_t i;

    for (i = 0; i < st->nCocs; i++) {
	const ProtoCoc *c = &st->cocs[i];

	sim_dsn_format(c->dsn, dsn);
	proto_hex(c->codeId, PROTO_CODE_ID, code);
	Spps_Log(interp, "CoC: device %s, %s, authorization code %s, device "
		"counter %llu", dsn, c->action, code,
		(unsigned long long) c->deviceCounter);
    }
}

/* Devices programmed by the job so far (the return of get_job_status). */
static Tcl_WideInt
Programmed(const ProtoStatus *st)
{
    Tcl_WideInt n = 0;
    size_t i;

    for (i = 0; i < st->nTickets; i++) {
	if (strcmp(st->tickets[i].action, "PROGRAM") == 0) {
	    n += st->tickets[i].completed;
	}
    }
    return n;
}

/*
 * ArchiveCopy --
 *	Writes a copy of a status image into the M-HSM's archive folder.
 */
static int
ArchiveCopy(Tcl_Interp *interp, FpeSession *s, const ProtoStatus *st,
	const uint8_t *image, size_t len)
{
    ProtoError err;
    char *path = NULL;
    int fail;

    if ((fail = role_mhsm_archive(s->mhsm, st, image, len, &path, &err)) != 0) {
	return FpeMhsmError(interp, "MHSM", fail, NULL, &err);
    }
    Spps_Log(interp, "Job status archived in '%s'", path);
    free(path);
    return TCL_OK;
}

/*
 * get_job_status --
 *	Each ticket's codes left, from the M-HSM; with -job_status_file the
 *	signed status (with the CoCs so far) for Job Manager.  Returns the
 *	number of devices programmed (completed PROGRAM actions).
 */
static int
GetJobStatusObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"job_status_file", SPPS_OPT_STRING, 0, NULL, NULL},
	{"archive", SPPS_OPT_BOOL, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[2];
    uint8_t *image = NULL;
    size_t len = 0, i;
    ProtoStatus st;
    ProtoError err;
    char *path = NULL;
    int archive = 0, fail, exists = 0, rc = TCL_ERROR;

    (void) cd;
    memset(&st, 0, sizeof(st));
    if (FPE_PARSE(interp, "get_job_status [-job_status_file \"job status "
	    "file\"] \\ [-archive \"TRUE | FALSE\"]", opts, objc, objv,
	    v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (v[1] != NULL) {
	Tcl_GetBooleanFromObj(NULL, v[1], &archive);
    }
    if (FpeRequireProject(interp, s, "get_job_status") != TCL_OK) {
	goto done;
    }
    if (v[0] != NULL) {
	path = FpeNormalizePath(interp, Tcl_GetString(v[0]));
	if (FpeCheckWritable(interp, "job_status_file", path) != TCL_OK) {
	    goto done;
	}
	if (plat_is_dir(path)) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE EXISTS {%s}", path),
		    Tcl_ObjPrintf("Parameter 'job_status_file' : '%s' is a "
			    "folder.", path));
	    goto done;
	}
	exists = plat_file_exists(path);
    }
    if (FpeRequireMhsm(interp, s) != TCL_OK) {
	goto done;
    }
    if ((fail = role_mhsm_status(s->mhsm, &s->project->job, ROLE_MHSM_STATUS,
	    (path != NULL || archive) ? &image : NULL, &len, &st, &err)) != 0) {
	FpeMhsmError(interp, "JOB", fail, NULL, &err);
	goto done;
    }
    if (exists) {
	Spps_Log(interp, "File/Folder '%s' will be overwritten.", path);
    }
    FPE_BLANK(interp);
    Spps_Log(interp, "Getting job status ...");
    FPE_BLANK(interp);
    if (st.isEnd) {
	/* The codes left are those the job ended with: none can be used. */
	Spps_Log(interp, "Job '%s' has ended (%s): its tickets are closed in "
		"the HSM and no authorization code can be issued.",
		st.jobName, st.endType);
	FPE_BLANK(interp);
    }
    for (i = 0; i < st.nTickets; i++) {
	LogTicket(interp, &st.tickets[i], st.isEnd);
	FPE_BLANK(interp);
    }
    if (archive && path == NULL) {
	LogCocs(interp, &st);
    }
    if (path != NULL) {
	if (FpeWriteFile(interp, path, image, len, 0644) != TCL_OK) {
	    goto done;
	}
	Spps_Log(interp, "Successfully exported job status file: '%s'", path);
    }
    if (archive && ArchiveCopy(interp, s, &st, image, len) != TCL_OK) {
	goto done;
    }
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "get_job_status");
    Tcl_SetObjResult(interp, Tcl_NewWideIntObj(Programmed(&st)));
    rc = TCL_OK;
  done:
    proto_status_free(&st);
    free(image);
    if (path != NULL) {
	Tcl_Free(path);
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * complete_prog_job --
 *	Ends the job: the M-HSM removes its tickets (only when every code is
 *	used, unless -terminate), signs an end certifier for each, and
 *	archives them; the end status (certifiers and every CoC) goes to
 *	-job_status_file.  That file is the job's proof of end: an existing
 *	file is never overwritten (checked before anything is removed).
 */
static int
CompleteProgJobObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"job_status_file", SPPS_OPT_STRING, 0, NULL, NULL},
	{"terminate", SPPS_OPT_FLAG, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[2];
    uint8_t *image = NULL;
    size_t len = 0, i;
    ProtoStatus st, before;
    ProtoError err;
    char *path = NULL, *archive = NULL;
    int terminate = 0, fail, ended = 0, rc = TCL_ERROR;

    (void) cd;
    memset(&st, 0, sizeof(st));
    memset(&before, 0, sizeof(before));
    if (FPE_PARSE(interp, "complete_prog_job [-job_status_file \"job status "
	    "file\"] [-terminate \"TRUE | FALSE\"]", opts, objc, objv,
	    v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (v[1] != NULL) {
	Tcl_GetBooleanFromObj(NULL, v[1], &terminate);
    }
    if (FpeRequireProject(interp, s, "complete_prog_job") != TCL_OK) {
	goto done;
    }
    if (v[0] != NULL) {
	path = FpeNormalizePath(interp, Tcl_GetString(v[0]));
	if (FpeCheckWritable(interp, "job_status_file", path) != TCL_OK) {
	    goto done;
	}
	if (plat_file_exists(path)) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE EXISTS {%s}", path),
		    Tcl_ObjPrintf("File/Folder '%s' already exists: "
			    "complete_prog_job does not overwrite a job end "
			    "status (it is the proof of the job's end). Remove "
			    "it or name another file; nothing was changed.",
			    path));
	    goto done;
	}
    }
    if (FpeRequireMhsm(interp, s) != TCL_OK) {
	goto done;
    }
    /* Whether the job had ended already (the same end status again). */
    if ((fail = role_mhsm_status(s->mhsm, &s->project->job, ROLE_MHSM_STATUS,
	    NULL, NULL, &before, &err)) != 0) {
	FpeMhsmError(interp, "JOB", fail, NULL, &err);
	goto done;
    }
    ended = before.isEnd;
    if ((fail = role_mhsm_status(s->mhsm, &s->project->job, terminate
	    ? ROLE_MHSM_TERMINATE : ROLE_MHSM_COMPLETE, &image, &len, &st,
	    &err)) != 0) {
	FpeMhsmError(interp, "JOB", fail, NULL, &err);
	goto done;
    }
    FPE_BLANK(interp);
    if (ended) {
	Spps_Log(interp, "Job '%s' had already ended (%s): its end status is "
		"exported again.", s->project->job.jobName, st.endType);
    } else {
	Spps_Log(interp, "%s job '%s' ...", strcmp(st.endType, "TERMINATED")
		== 0 ? "Terminating" : "Completing", s->project->job.jobName);
    }
    FPE_BLANK(interp);
    for (i = 0; i < st.nTickets; i++) {
	LogTicket(interp, &st.tickets[i], 1);
	if (i < st.nCertifiers) {
	    Spps_Log(interp, "Job ticket end certifier: %s, signed by M-HSM %s",
		    st.certifiers[i].endType, st.mhsmUuid);
	}
	FPE_BLANK(interp);
    }
    archive = role_mhsm_archive_dir(s->mhsm);
    Spps_Log(interp, "Job tickets removed from the HSM and archived in '%s' "
	    "(%lu CoC%s).", archive ? archive : "?", (unsigned long) st.nCocs,
	    st.nCocs == 1 ? "" : "s");
    if (path != NULL) {
	if (FpeWriteFile(interp, path, image, len, 0644) != TCL_OK) {
	    goto done;
	}
	Spps_Log(interp, "Successfully exported job status file: '%s'", path);
    } else {
	LogCocs(interp, &st);
	Spps_Log(interp, "No job status file was given: the end certifiers "
		"stay in the HSM's archive (complete_prog_job "
		"-job_status_file exports them again).");
    }
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "complete_prog_job");
    Tcl_ResetResult(interp);
    rc = TCL_OK;
  done:
    free(archive);
    proto_status_free(&st);
    proto_status_free(&before);
    free(image);
    if (path != NULL) {
	Tcl_Free(path);
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Programmer commands                                                  */
/* ------------------------------------------------------------------ */

/*
 * NamedPrgs --
 *	The programmers of a repeatable -name (*n names in *names), for the
 *	commands that work on the connected list: connects first if need
 *	be, and checks every name before the command acts on any.
 */
static int
NamedPrgs(Tcl_Interp *interp, FpeSession *s, Tcl_Obj *list, int *n,
	Tcl_Obj ***names)
{
    int i;

    if (NeedConnected(interp, s) != TCL_OK) {
	return TCL_ERROR;
    }
    Tcl_ListObjGetElements(NULL, list, n, names);
    for (i = 0; i < *n; i++) {
	if (FpeFindPrg(s, Tcl_GetString((*names)[i])) == NULL) {
	    return FpeNoPrg(interp, Tcl_GetString((*names)[i]));
	}
    }
    return TCL_OK;
}

/*
 * PingPrgObjCmd --
 *	ping_prg -name ...: each programmer answers if still connected.
 */
static int
PingPrgObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"name", SPPS_OPT_LIST, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[1], **names;
    SimProgrammer p;
    SimError err;
    int n, i, rc = TCL_ERROR;

    (void) cd;
    if (FPE_PARSE(interp, "ping_prg [-name \"name\"]+", opts, objc, objv,
	    v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (NamedPrgs(interp, s, v[0], &n, &names) != TCL_OK) {
	goto done;
    }
    for (i = 0; i < n; i++) {
	const char *name = Tcl_GetString(names[i]);

	if (sim_programmer_get(s->bench, name, &p, &err) != 0) {
	    Spps_Log(interp, "programmer '%s' : Ping FAILED: not connected.",
		    name);
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("PROGRAMMER GONE {%s}", name),
		    Tcl_ObjPrintf("Programmer '%s' is not connected to the "
			    "machine.", name));
	    goto done;
	}
	Spps_Log(interp, "programmer '%s' : Ping PASSED.", name);
    }
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "ping_prg");
    Tcl_ResetResult(interp);
    rc = TCL_OK;
  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * ScanChainPrgObjCmd --
 *	scan_chain_prg -name: the device on the chain; returns their
 *	number.
 */
static int
ScanChainPrgObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"name", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[1];
    SimSession *session = NULL;
    SimDeviceInfo info;
    SimError err;
    char dsn[2 * PROTO_DSN + 1];
    const char *name;
    int rc = TCL_ERROR;

    (void) cd;
    if (FPE_PARSE(interp, "scan_chain_prg [-name \"name\"]", opts, objc, objv,
	    v) != TCL_OK) {
	return TCL_ERROR;
    }
    name = Tcl_GetString(v[0]);
    if (NeedConnected(interp, s) != TCL_OK) {
	goto done;
    }
    if (FpeFindPrg(s, name) == NULL) {
	FpeNoPrg(interp, name);
	goto done;
    }
    Spps_Log(interp, "programmer '%s' : Scan Chain...", name);
    if (sim_session_open(s->bench, name, &session, &info, &err) != 0) {
	if (err.cond != SIM_NO_BOARD) {
	    BenchError(interp, &err);
	    goto done;
	}
	Spps_Log(interp, "programmer '%s' : No device found on the chain.",
		name);
	Tcl_SetObjResult(interp, Tcl_NewIntObj(0));
    } else {
	sim_dsn_format(info.dsn, dsn);
	Spps_Log(interp, "programmer '%s' : Device 1: Mfr: Microchip Part: %s "
		"(%s) DSN: %s", name, info.die, info.family, dsn);
	sim_session_close(session);
	Tcl_SetObjResult(interp, Tcl_NewIntObj(1));
    }
    Spps_Log(interp, "programmer '%s' : Scan Chain PASSED.", name);
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "scan_chain_prg");
    rc = TCL_OK;
  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * SelfTestPrgObjCmd --
 *	self_test_prg -name ...: FlashPro4 and FlashPro5 do not have it.
 */
static int
SelfTestPrgObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"name", SPPS_OPT_LIST, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[1], **names;
    int n, i, rc = TCL_ERROR;

    (void) cd;
    if (FPE_PARSE(interp, "self_test_prg [-name \"name\"]+", opts, objc, objv,
	    v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (NamedPrgs(interp, s, v[0], &n, &names) != TCL_OK) {
	goto done;
    }
    for (i = 0; i < n; i++) {
	FpePrg *p = FpeFindPrg(s, Tcl_GetString(names[i]));

	if (strcmp(p->type, "FlashPro4") == 0 || strcmp(p->type, "FlashPro5")
		== 0) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("PROGRAMMER SELF_TEST {%s}",
		    p->name), Tcl_ObjPrintf("programmer '%s' : Self Test is not "
		    "supported by %s programmers.", p->name, p->type));
	    goto done;
	}
	Spps_Log(interp, "programmer '%s' : Self Test PASSED.", p->name);
    }
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "self_test_prg");
    Tcl_ResetResult(interp);
    rc = TCL_OK;
  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * SetPrgNameObjCmd --
 *	set_prg_name: renames a programmer on the bench.
 */
static int
SetPrgNameObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"new_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[2];
    SimError err;
    FpePrg *p;
    int rc = TCL_ERROR;

    (void) cd;
    if (FPE_PARSE(interp, "set_prg_name -name \"name\" -new_name \"new_name\"",
	    opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (NeedConnected(interp, s) != TCL_OK) {
	goto done;
    }
    if ((p = FpeFindPrg(s, Tcl_GetString(v[0]))) == NULL) {
	FpeNoPrg(interp, Tcl_GetString(v[0]));
	goto done;
    }
    if (sim_programmer_rename(s->bench, p->name, Tcl_GetString(v[1]),
	    &err) != 0) {
	BenchError(interp, &err);
	goto done;
    }
    snprintf(p->name, sizeof(p->name), "%s", Tcl_GetString(v[1]));
    Spps_Log(interp, "programmer '%s' renamed '%s'.", Tcl_GetString(v[0]),
	    p->name);
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "set_prg_name");
    Tcl_ResetResult(interp);
    rc = TCL_OK;
  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * EnablePrgObjCmd --
 *	enable_prg: disabled programmers are skipped by
 *	run_selected_actions.
 */
static int
EnablePrgObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"name", SPPS_OPT_LIST, 1, NULL, NULL},
	{"enable", SPPS_OPT_BOOL, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[2], **names;
    int n, i, enable = 1, rc = TCL_ERROR;

    (void) cd;
    if (FPE_PARSE(interp, "enable_prg [-name \"name\"]+ -enable \"TRUE | "
	    "FALSE\"", opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    Tcl_GetBooleanFromObj(NULL, v[1], &enable);
    if (NamedPrgs(interp, s, v[0], &n, &names) != TCL_OK) {
	goto done;
    }
    for (i = 0; i < n; i++) {
	FpePrg *p = FpeFindPrg(s, Tcl_GetString(names[i]));

	p->enabled = enable;
	Spps_Log(interp, "programmer '%s' : %s", p->name, enable ? "enabled"
		: "disabled");
    }
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "enable_prg");
    Tcl_ResetResult(interp);
    rc = TCL_OK;
  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * RemovePrgObjCmd --
 *	remove_prg: off the session's list until the next refresh.
 */
static int
RemovePrgObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"name", SPPS_OPT_LIST, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[1], **names;
    int n, i, rc = TCL_ERROR;

    (void) cd;
    if (FPE_PARSE(interp, "remove_prg [-name \"name\"]+", opts, objc, objv,
	    v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (NamedPrgs(interp, s, v[0], &n, &names) != TCL_OK) {
	goto done;
    }
    for (i = 0; i < n; i++) {
	FpePrg *p = FpeFindPrg(s, Tcl_GetString(names[i]));

	if (p == NULL) {
	    continue;			/* named twice */
	}
	Spps_Log(interp, "programmer '%s' removed from the list.", p->name);
	memmove(p, p + 1, (size_t) (s->prg + s->nPrg - p - 1) * sizeof(*p));
	s->nPrg--;
    }
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "remove_prg");
    Tcl_ResetResult(interp);
    rc = TCL_OK;
  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * RefreshPrgListObjCmd --
 *	refresh_prg_list: reads the bench's programmers again.
 */
static int
RefreshPrgListObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    FpeSession *s = FpeGetSession(interp);

    (void) cd;
    if (objc != 1) {
	Tcl_WrongNumArgs(interp, 1, objv, NULL);
	return TCL_ERROR;
    }
    if (FpeConnect(interp, s, NULL, 1) != TCL_OK) {
	return TCL_ERROR;
    }
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "refresh_prg_list");
    return TCL_OK;
}

/*
 * GetConnectedProgrammersObjCmd --
 *	get_connected_programmers: {name type} pairs.
 */
static int
GetConnectedProgrammersObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *result;
    size_t i;

    (void) cd;
    if (objc != 1) {
	Tcl_WrongNumArgs(interp, 1, objv, NULL);
	return TCL_ERROR;
    }
    if (NeedConnected(interp, s) != TCL_OK) {
	return TCL_ERROR;
    }
    result = Tcl_NewListObj(0, NULL);
    for (i = 0; i < s->nPrg; i++) {
	Tcl_Obj *pair[2];

	pair[0] = Tcl_NewStringObj(s->prg[i].name, -1);
	pair[1] = Tcl_ObjPrintf("FP%s", s->prg[i].type + 8);
	Tcl_ListObjAppendElement(NULL, result, Tcl_NewListObj(2, pair));
    }
    Spps_LogSucceeded(interp, "get_connected_programmers");
    Tcl_SetObjResult(interp, result);
    return TCL_OK;
}

/*
 * configure_flashpro{3,4,5,6}_prg --
 *	Programmer settings, checked against what each programmer does and
 *	kept for the session (and in the open project).  Frequencies are
 *	given in MHz or in Hz.
 */
typedef struct PrgModel {
    const char *cmd;
    const char *type;
    int vpump, clkMode, sck;	/* which options it has */
    const int *freqs;		/* allowed MHz, 0-terminated; NULL: 1..maxFreq */
    int maxFreq;
} PrgModel;

static const int fp3Freqs[] = {1, 2, 3, 4, 6, 0};
static const int fp4Freqs[] = {1, 2, 3, 4, 5, 6, 0};
static const int fp5Freqs[] = {1, 2, 3, 4, 5, 6, 10, 15, 30, 0};
static const PrgModel models[] = {
    {"configure_flashpro3_prg", "FlashPro3", 1, 1, 0, fp3Freqs, 6},
    {"configure_flashpro4_prg", "FlashPro4", 1, 1, 0, fp4Freqs, 6},
    {"configure_flashpro5_prg", "FlashPro5", 0, 0, 0, fp5Freqs, 30},
    {"configure_flashpro6_prg", "FlashPro6", 1, 0, 1, NULL, 20}
};

/*
 * OnOff --
 *	Checks an ON|OFF value.
 */
static int
OnOff(Tcl_Interp *interp, const char *opt, Tcl_Obj *value)
{
    const char *v = Tcl_GetString(value);

    if (strcasecmp(v, "ON") == 0 || strcasecmp(v, "OFF") == 0) {
	return TCL_OK;
    }
    return Spps_ErrorObj(interp, Tcl_ObjPrintf("OPTION VALUE %s", opt),
	    Tcl_ObjPrintf("%s: Invalid argument value: '%s' (expecting ON or "
		    "OFF).", opt, v));
}

/*
 * CheckFreq --
 *	Checks a frequency (MHz or Hz) against what the model does.
 */
static int
CheckFreq(Tcl_Interp *interp, const PrgModel *m, Tcl_Obj *value, int *mhz)
{
    Tcl_WideInt f;
    Tcl_Obj *expect = Tcl_NewObj();
    int i, ok = 0;

    if (Tcl_GetWideIntFromObj(NULL, value, &f) == TCL_OK) {
	if (f >= 1000000 && f % 1000000 == 0) {
	    f /= 1000000;
	}
	if (m->freqs != NULL) {
	    for (i = 0; m->freqs[i] != 0; i++) {
		ok |= f == m->freqs[i];
	    }
	} else {
	    ok = f >= 1 && f <= m->maxFreq;
	}
    }
    if (ok) {
	*mhz = (int) f;
	Tcl_DecrRefCount(expect);
	return TCL_OK;
    }
    if (m->freqs != NULL) {
	for (i = 0; m->freqs[i] != 0; i++) {
	    Tcl_AppendPrintfToObj(expect, "%s%d000000", i == 0 ? ""
		    : m->freqs[i + 1] == 0 ? " or " : ", ", m->freqs[i]);
	}
    } else {
	Tcl_AppendPrintfToObj(expect, "1000000 to %d000000, in steps of "
		"1000000", m->maxFreq);
    }
    return Spps_ErrorObj(interp, Tcl_NewStringObj("OPTION VALUE freq", -1),
	    Tcl_ObjPrintf("freq: Invalid argument value: '%s' (expecting %s).",
		    Tcl_GetString(value), Tcl_GetString(expect)));
}

/*
 * ConfigurePrgObjCmd --
 *	configure_flashpro<N>_prg (client data: its PrgModel): parses and
 *	checks the options for the model, and keeps them for the session and
 *	the open project.
 */
static int
ConfigurePrgObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const char *const clkModes[] = {"discrete_clk", "free_running_clk",
	NULL};
    static const SppsOption opts[] = {
	{"vpump", SPPS_OPT_STRING, 0, NULL, NULL},
	{"clk_mode", SPPS_OPT_STRING, 0, NULL, NULL},
	{"force_freq", SPPS_OPT_STRING, 0, NULL, NULL},
	{"freq", SPPS_OPT_STRING, 0, NULL, NULL},
	{"force_sck_freq", SPPS_OPT_STRING, 0, NULL, NULL},
	{"sck_freq", SPPS_OPT_STRING, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    const PrgModel *m = cd;
    const char *cmd = m->cmd;
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[6], *conf = NULL, *usage;
    double sck;
    int i, mhz = 0, rc = TCL_ERROR;

    usage = Tcl_ObjPrintf("%s%s%s [-force_freq {ON | OFF}] [-freq {freq}]%s",
	    cmd, m->vpump ? " [-vpump {ON | OFF}]" : "", m->clkMode
	    ? " [-clk_mode {discrete_clk | free_running_clk}]" : "", m->sck
	    ? " [-force_sck_freq {ON | OFF}] [-sck_freq \"sck_freq\"]" : "");
    Tcl_IncrRefCount(usage);
    if (FPE_PARSE(interp, Tcl_GetString(usage), opts, objc, objv,
	    v) != TCL_OK) {
	Tcl_DecrRefCount(usage);
	return TCL_ERROR;
    }
    /* Options the model does not have are "not defined" for it. */
    for (i = 0; i < 6; i++) {
	int has = i == 0 ? m->vpump : i == 1 ? m->clkMode : i >= 4 ? m->sck : 1;

	if (v[i] != NULL && !has) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("OPTION UNKNOWN %s",
		    opts[i].name), Tcl_ObjPrintf("Parameter '%s' is not defined. "
		    "Valid command formatting is '%s'.", opts[i].name,
		    Tcl_GetString(usage)));
	    goto done;
	}
    }
    if ((v[0] != NULL && OnOff(interp, "vpump", v[0]) != TCL_OK)
	    || (v[2] != NULL && OnOff(interp, "force_freq", v[2]) != TCL_OK)
	    || (v[4] != NULL && OnOff(interp, "force_sck_freq", v[4]) != TCL_OK)
	    || (v[3] != NULL && CheckFreq(interp, m, v[3], &mhz) != TCL_OK)) {
	goto done;
    }
    if (v[1] != NULL) {
	const char *c = Tcl_GetString(v[1]);

	if (strcmp(c, clkModes[0]) != 0 && strcmp(c, clkModes[1]) != 0) {
	    Spps_ErrorObj(interp, Tcl_NewStringObj("OPTION VALUE clk_mode", -1),
		    Tcl_ObjPrintf("Invalid 'clk_mode' argument value: '%s' "
			    "(expecting discrete_clk or free_running_clk).", c));
	    goto done;
	}
    }
    if (v[5] != NULL && (Tcl_GetDoubleFromObj(NULL, v[5], &sck) != TCL_OK
	    || sck <= 0 || sck > 40)) {
	Spps_ErrorObj(interp, Tcl_NewStringObj("OPTION VALUE sck_freq", -1),
		Tcl_ObjPrintf("sck_freq: Invalid argument value: '%s' (expecting "
			"a frequency in MHz above 0, at most 40).",
			Tcl_GetString(v[5])));
	goto done;
    }
    if (Tcl_DictObjGet(NULL, s->prgConfig, Tcl_NewStringObj(m->type, -1),
	    &conf) != TCL_OK || conf == NULL) {
	conf = Tcl_NewDictObj();
    } else {
	conf = Tcl_DuplicateObj(conf);
    }
    for (i = 0; i < 6; i++) {
	if (v[i] != NULL) {
	    Tcl_DictObjPut(NULL, conf, Tcl_NewStringObj(opts[i].name, -1),
		    i == 3 ? Tcl_NewIntObj(mhz) : v[i]);
	    if (s->project != NULL) {
		char key[64];

		snprintf(key, sizeof(key), "%s.%s", m->type, opts[i].name);
		fpe_project_set(&s->project->p, key, i == 3
			? Tcl_GetString(Tcl_NewIntObj(mhz))
			: Tcl_GetString(v[i]));
		s->project->dirty = 1;
	    }
	}
    }
    if (Tcl_IsShared(s->prgConfig)) {
	Tcl_Obj *copy = Tcl_DuplicateObj(s->prgConfig);

	Tcl_DecrRefCount(s->prgConfig);
	s->prgConfig = copy;
	Tcl_IncrRefCount(copy);
    }
    Tcl_DictObjPut(NULL, s->prgConfig, Tcl_NewStringObj(m->type, -1), conf);
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, cmd);
    Tcl_SetObjResult(interp, conf);
    rc = TCL_OK;
  done:
    Tcl_DecrRefCount(usage);
    Spps_FreeOptionValues(opts, v);
    return rc;
}

const FpeCommand fpeRunCommands[] = {
    {"run_selected_actions", RunSelectedActionsObjCmd, NULL},
    {"get_job_status", GetJobStatusObjCmd, NULL},
    {"complete_prog_job", CompleteProgJobObjCmd, NULL},
    {"ping_prg", PingPrgObjCmd, NULL},
    {"scan_chain_prg", ScanChainPrgObjCmd, NULL},
    {"self_test_prg", SelfTestPrgObjCmd, NULL},
    {"set_prg_name", SetPrgNameObjCmd, NULL},
    {"enable_prg", EnablePrgObjCmd, NULL},
    {"remove_prg", RemovePrgObjCmd, NULL},
    {"refresh_prg_list", RefreshPrgListObjCmd, NULL},
    {"get_connected_programmers", GetConnectedProgrammersObjCmd, NULL},
    {"configure_flashpro3_prg", ConfigurePrgObjCmd, &models[0]},
    {"configure_flashpro4_prg", ConfigurePrgObjCmd, &models[1]},
    {"configure_flashpro5_prg", ConfigurePrgObjCmd, &models[2]},
    {"configure_flashpro6_prg", ConfigurePrgObjCmd, &models[3]},
    {NULL, NULL, NULL}
};
