/*
 * tcl_jobmgr_task.c --
 *
 *	HSM tasks of a Job Manager project and the OE's side of the HSM flow
 *	(doc/jobmgr.n, docs/PROTOCOL.md): add_hsmtask_to_job, remove_hsmtask,
 *	new_hsmtask_ticket, remove_hsmtask_ticket, hsmtask_m_request,
 *	hsmtask_m_reply, export_hsmtask, import_job_status, list_hsmtasks,
 *	get_hsmtask_info.
 *
 *	A task goes CREATED -> REQUESTED (a signed request was written) ->
 *	BOUND (the M-HSM's reply was validated) -> EXPORTED (the job was
 *	written).  The commands that write a file for another party, or read
 *	one from it, also save the project: first the file, then the project;
 *	if saving fails the file is removed and the task is as it was.
 */

#include "tcl_jobmgr.h"
#include "sim/sim_factory.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#define MAX_PEER_FILE (64u * 1024 * 1024)

static const char *const stateNames[] = {
    "created", "requested", "bound", "exported"
};

/* ------------------------------------------------------------------ */
/* Lookups                                                              */
/* ------------------------------------------------------------------ */

static int
FindTask(Tcl_Interp *interp, JmSession *s, const char *cmd, Tcl_Obj *jobName,
	Tcl_Obj *taskName, JmJob **job, JmTask **task)
{
    if (JmFindJob(interp, s, cmd, Tcl_GetString(jobName), job) != TCL_OK) {
	return TCL_ERROR;
    }
    *task = jm_find_task(*job, Tcl_GetString(taskName));
    if (*task == NULL) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("TASK UNKNOWN {%s}",
		Tcl_GetString(taskName)), Tcl_ObjPrintf("%s: job '%s' has no "
		"HSM task '%s'", cmd, (*job)->name, Tcl_GetString(taskName)));
    }
    return TCL_OK;
}

/* The bitstream definition a device of a job uses. */
static JmBitstreamDef *
DeviceBitstream(const JmProject *p, const JmDevice *dev, JmProgData **data)
{
    JmProgData *d = jm_find_data(p, dev->dataName);

    *data = d;
    return d != NULL ? jm_find_bitstream(d, dev->bitstreamName) : NULL;
}

/*
 * HexId --
 *	Lower-case hex of an id.
 */
static void
HexId(const uint8_t *id, size_t len, char *out)
{
    proto_hex(id, len, out);
}

/* ------------------------------------------------------------------ */
/* Tasks and tickets                                                    */
/* ------------------------------------------------------------------ */

/*
 * add_hsmtask_to_job -job_name job -hsmtask_name task
 *	?-cm_request_type INTERNAL|EXTERNAL?
 *	INTERNAL: the job runs on the M-HSM function of this U-HSM (test
 *	execution); EXTERNAL (the default): on the M-HSM of a CM, the one
 *	set_hsm_params -m_hsm_uuid names.
 */
static int
AddTaskObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const char *const types[] = {"INTERNAL", "EXTERNAL", NULL};
    static const SppsOption opts[] = {
	{"job_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"hsmtask_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"cm_request_type", SPPS_OPT_ENUM, 0, types, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[3];
    JmJob *j;
    JmTask *t;
    const char *name;
    int rc = TCL_ERROR;

    (void) cd;
    if (JM_PARSE(interp, "add_hsmtask_to_job -job_name \"job\" -hsmtask_name "
	    "\"task\" [-cm_request_type \"INTERNAL | EXTERNAL\"]", opts, objc,
	    objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    name = Tcl_GetString(v[1]);
    if (JmRequireProject(interp, s, "add_hsmtask_to_job") != TCL_OK
	    || JmCheckName(interp, "hsmtask_name", v[1]) != TCL_OK
	    || JmFindJob(interp, s, "add_hsmtask_to_job", Tcl_GetString(v[0]),
		    &j) != TCL_OK) {
	goto done;
    }
    if (jm_find_task(j, name) != NULL) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("TASK DUPLICATE {%s}", name),
		Tcl_ObjPrintf("add_hsmtask_to_job: job '%s' already has an HSM "
			"task '%s'", j->name, name));
	goto done;
    }
    t = JmGrow((void **) &j->tasks, &j->nTasks, sizeof(JmTask));
    if (t == NULL || (t->name = jm_strdup(name)) == NULL) {
	if (t != NULL) {
	    j->nTasks--;
	}
	Spps_Error(interp, "PROJECT IO", "out of memory");
	goto done;
    }
    t->internal = v[2] != NULL && strcmp(Tcl_GetString(v[2]), "INTERNAL") == 0;
    t->state = JM_TASK_CREATED;
    s->dirty = 1;
    Spps_Log(interp, "HSM task '%s' added to job '%s' (%s).", t->name, j->name,
	    t->internal ? "INTERNAL: run by the M-HSM function of the U-HSM"
	    : "for the M-HSM of a contract manufacturer");
    Spps_LogSucceeded(interp, "add_hsmtask_to_job");
    rc = TCL_OK;

  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * remove_hsmtask -job_name job -hsmtask_name task ?-force bool?
 */
static int
RemoveTaskObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"job_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"hsmtask_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"force", SPPS_OPT_BOOL, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[3];
    JmJob *j;
    JmTask *t;
    int force = 0, rc = TCL_ERROR;

    (void) cd;
    if (JM_PARSE(interp, "remove_hsmtask -job_name \"job\" -hsmtask_name "
	    "\"task\" [-force \"TRUE | FALSE\"]", opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (v[2] != NULL) {
	Tcl_GetBooleanFromObj(NULL, v[2], &force);
    }
    if (JmRequireProject(interp, s, "remove_hsmtask") != TCL_OK
	    || FindTask(interp, s, "remove_hsmtask", v[0], v[1], &j, &t)
		!= TCL_OK) {
	goto done;
    }
    if (t->state == JM_TASK_EXPORTED && !force) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("TASK STATE {%s}", t->name),
		Tcl_ObjPrintf("remove_hsmtask: HSM task '%s' was exported to "
			"'%s': without it, its status files cannot be validated; "
			"give -force TRUE to remove it anyway", t->name,
			t->jobFile ? t->jobFile : ""));
	goto done;
    }
    Spps_Log(interp, "HSM task '%s' removed from job '%s'.", t->name, j->name);
    jm_task_free(t);
    JmRemoveAt(j->tasks, &j->nTasks, sizeof(JmTask), (size_t) (t - j->tasks));
    s->dirty = 1;
    Spps_LogSucceeded(interp, "remove_hsmtask");
    rc = TCL_OK;

  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* Tickets can change only before the request fixed them. */
static int
RequireCreated(Tcl_Interp *interp, const char *cmd, const JmTask *t)
{
    if (t->state != JM_TASK_CREATED) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("TASK STATE {%s}", t->name),
		Tcl_ObjPrintf("%s: HSM task '%s' is %s: its tickets were fixed "
			"by its job request; add a new HSM task instead", cmd,
			t->name, stateNames[t->state]));
    }
    return TCL_OK;
}

/*
 * new_hsmtask_ticket -job_name job -hsmtask_name task -ticket_name name
 *	-device_name device -actions PROGRAM|VERIFY|ERASE -max_device N|unlimited
 */
static int
NewTicketObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const char *const actions[] = {"PROGRAM", "VERIFY", "ERASE", NULL};
    static const SppsOption opts[] = {
	{"job_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"hsmtask_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"ticket_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"device_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"actions", SPPS_OPT_STRING, 1, NULL, NULL},
	{"max_device", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    static const char usage[] = "new_hsmtask_ticket -job_name \"job\" "
	    "-hsmtask_name \"task\" -ticket_name \"name\" -device_name "
	    "\"device\" -actions \"PROGRAM | VERIFY | ERASE\" -max_device "
	    "\"number | unlimited\"";
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[6], **elems;
    JmJob *j;
    JmTask *t;
    JmTicket *k;
    JmDevice *dev;
    JmProgData *d;
    JmBitstreamDef *bs;
    const char *name, *action = NULL, *max;
    Tcl_WideInt maxDevices;
    int count, a, rc = TCL_ERROR;
    size_t i;

    (void) cd;
    if (JM_PARSE(interp, usage, opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    name = Tcl_GetString(v[2]);
    /* -actions: one action (a one-element list is fine). */
    if (Tcl_ListObjGetElements(NULL, v[4], &count, &elems) != TCL_OK
	    || count != 1) {
	Spps_Error(interp, "OPTION VALUE actions", "Parameter 'actions' has "
		"illegal value. A ticket authorises one action: PROGRAM, VERIFY "
		"or ERASE (give each action its own ticket).");
	goto done;
    }
    for (a = 0; actions[a] != NULL; a++) {
	if (strcasecmp(Tcl_GetString(elems[0]), actions[a]) == 0) {
	    action = actions[a];
	}
    }
    if (action == NULL) {
	Spps_Error(interp, "OPTION VALUE actions", "Parameter 'actions' has "
		"illegal value.");
	goto done;
    }
    max = Tcl_GetString(v[5]);
    if (strcasecmp(max, "unlimited") == 0) {
	maxDevices = PROTO_UNLIMITED;
    } else if (Tcl_GetWideIntFromObj(NULL, v[5], &maxDevices) != TCL_OK
	    || maxDevices < 1 || maxDevices > ((Tcl_WideInt) 1 << 40)) {
	Spps_Error(interp, "OPTION VALUE max_device", "Parameter 'max_device' "
		"has illegal value. Give a number of devices (1 or more) or "
		"'unlimited'.");
	goto done;
    }
    if (JmRequireProject(interp, s, "new_hsmtask_ticket") != TCL_OK
	    || JmCheckName(interp, "ticket_name", v[2]) != TCL_OK
	    || FindTask(interp, s, "new_hsmtask_ticket", v[0], v[1], &j, &t)
		!= TCL_OK
	    || RequireCreated(interp, "new_hsmtask_ticket", t) != TCL_OK) {
	goto done;
    }
    if (jm_find_ticket(t, name) != NULL) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("TICKET DUPLICATE {%s}", name),
		Tcl_ObjPrintf("new_hsmtask_ticket: HSM task '%s' already has a "
			"ticket '%s'", t->name, name));
	goto done;
    }
    if ((dev = jm_find_device(j, Tcl_GetString(v[3]))) == NULL) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("DEVICE UNKNOWN {%s}",
		Tcl_GetString(v[3])), Tcl_ObjPrintf("new_hsmtask_ticket: job "
		"'%s' has no device '%s' (add_microsemi_prog_device first)",
		j->name, Tcl_GetString(v[3])));
	goto done;
    }
    for (i = 0; i < t->nTickets; i++) {
	if (strcmp(t->tickets[i].device, dev->name) == 0
		&& strcmp(t->tickets[i].action, action) == 0) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("TICKET DUPLICATE {%s}", name),
		    Tcl_ObjPrintf("new_hsmtask_ticket: ticket '%s' of HSM task "
			    "'%s' already authorises %s on device '%s'",
			    t->tickets[i].name, t->name, action, dev->name));
	    goto done;
	}
    }
    bs = DeviceBitstream(s->project, dev, &d);
    if (bs == NULL || d->keysetName == NULL
	    || strcmp(bs->protocol, "AUTH_CODE") != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("TICKET FLOW {%s}", dev->name),
		Tcl_ObjPrintf("new_hsmtask_ticket: device '%s' is programmed "
			"with bitstream '%s' of programming data '%s', which is "
			"not an HSM-flow bitstream (a keyset and -use_protocol "
			"AUTH_CODE): the M-HSM can issue no authorization code "
			"for it", dev->name, dev->bitstreamName, dev->dataName));
	goto done;
    }
    k = JmGrow((void **) &t->tickets, &t->nTickets, sizeof(JmTicket));
    if (k == NULL || (k->name = jm_strdup(name)) == NULL
	    || (k->device = jm_strdup(dev->name)) == NULL
	    || (k->action = jm_strdup(action)) == NULL) {
	if (k != NULL) {
	    jm_ticket_free(k);
	    t->nTickets--;
	}
	Spps_Error(interp, "PROJECT IO", "out of memory");
	goto done;
    }
    k->maxDevices = (int64_t) maxDevices;
    s->dirty = 1;
    if (maxDevices == PROTO_UNLIMITED) {
	Spps_Log(interp, "Ticket '%s' added to HSM task '%s': %s on device "
		"'%s', unlimited (no overbuild protection).", k->name, t->name,
		action, dev->name);
    } else {
	Spps_Log(interp, "Ticket '%s' added to HSM task '%s': %s on device "
		"'%s', at most %lld devices.", k->name, t->name, action,
		dev->name, (long long) maxDevices);
    }
    Spps_LogSucceeded(interp, "new_hsmtask_ticket");
    rc = TCL_OK;

  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * remove_hsmtask_ticket -job_name job -hsmtask_name task -ticket_name name
 */
static int
RemoveTicketObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"job_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"hsmtask_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"ticket_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[3];
    JmJob *j;
    JmTask *t;
    JmTicket *k;
    int rc = TCL_ERROR;

    (void) cd;
    if (JM_PARSE(interp, "remove_hsmtask_ticket -job_name \"job\" "
	    "-hsmtask_name \"task\" -ticket_name \"name\"", opts, objc, objv, v)
	    != TCL_OK) {
	return TCL_ERROR;
    }
    if (JmRequireProject(interp, s, "remove_hsmtask_ticket") != TCL_OK
	    || FindTask(interp, s, "remove_hsmtask_ticket", v[0], v[1], &j, &t)
		!= TCL_OK) {
	goto done;
    }
    if ((k = jm_find_ticket(t, Tcl_GetString(v[2]))) == NULL) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("TICKET UNKNOWN {%s}",
		Tcl_GetString(v[2])), Tcl_ObjPrintf("remove_hsmtask_ticket: HSM "
		"task '%s' has no ticket '%s'", t->name, Tcl_GetString(v[2])));
	goto done;
    }
    if (RequireCreated(interp, "remove_hsmtask_ticket", t) != TCL_OK) {
	goto done;
    }
    Spps_Log(interp, "Ticket '%s' removed from HSM task '%s'.", k->name,
	    t->name);
    jm_ticket_free(k);
    JmRemoveAt(t->tickets, &t->nTickets, sizeof(JmTicket),
	    (size_t) (k - t->tickets));
    s->dirty = 1;
    Spps_LogSucceeded(interp, "remove_hsmtask_ticket");
    rc = TCL_OK;

  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* hsmtask_m_request                                                    */
/* ------------------------------------------------------------------ */

/* Notes that a file will be replaced, as the tools do. */
static void
LogOverwrite(Tcl_Interp *interp, const char *path)
{
    if (plat_file_exists(path)) {
	Spps_Log(interp, "File/Folder '%s' will be overwritten.", path);
    }
}

/*
 * Saves the project after a task changed; on failure removes the file
 * just written (if any) and returns TCL_ERROR: the caller restores the
 * task.
 */
static int
SaveAfter(Tcl_Interp *interp, JmSession *s, const char *writtenFile)
{
    int wasDirty = s->dirty;

    if (JmSaveProject(interp, s) != TCL_OK) {
	PlatError perr;

	if (writtenFile != NULL) {
	    plat_remove(writtenFile, &perr);
	}
	s->dirty = wasDirty;
	return TCL_ERROR;
    }
    return TCL_OK;
}

/*
 * hsmtask_m_request -job_name job -hsmtask_name task -request_file file.req
 */
static int
RequestObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"job_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"hsmtask_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"request_file", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[3];
    JmJob *j;
    JmTask *t;
    ProtoRequest req;
    ProtoTicketSpec *specs = NULL;
    ProtoError err;
    uint8_t *image = NULL, digest[PROTO_DIGEST];
    size_t len = 0, i;
    char *path = NULL, hex[2 * PROTO_DIGEST + 1];
    const char *mhsm;
    /* the task before, to restore */
    JmTaskState oldState;
    uint8_t oldDigest[PROTO_DIGEST];
    char oldMhsm[41], *oldFile;
    uint64_t oldTime;
    int rc = TCL_ERROR;

    (void) cd;
    memset(&req, 0, sizeof(req));
    if (JM_PARSE(interp, "hsmtask_m_request -job_name \"job\" -hsmtask_name "
	    "\"task\" -request_file \"request file\"", opts, objc, objv, v)
	    != TCL_OK) {
	return TCL_ERROR;
    }
    if (JmRequireProject(interp, s, "hsmtask_m_request") != TCL_OK
	    || FindTask(interp, s, "hsmtask_m_request", v[0], v[1], &j, &t)
		!= TCL_OK
	    || JmRequireUhsm(interp, s, "hsmtask_m_request") != TCL_OK) {
	goto done;
    }
    if (t->state >= JM_TASK_BOUND) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("TASK STATE {%s}", t->name),
		Tcl_ObjPrintf("hsmtask_m_request: HSM task '%s' is already bound "
			"to M-HSM %s by its reply: a task is bound once; add a "
			"new HSM task for another request", t->name, t->mhsmUuid));
	goto done;
    }
    if (t->nTickets == 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("TASK EMPTY {%s}", t->name),
		Tcl_ObjPrintf("hsmtask_m_request: HSM task '%s' has no ticket "
			"(new_hsmtask_ticket first)", t->name));
	goto done;
    }
    if (t->internal) {
	mhsm = role_uhsm_uuid(s->uhsm);
    } else {
	mhsm = s->settings.mhsmUuid;
	if (mhsm[0] == '\0') {
	    Spps_ErrorObj(interp, Tcl_NewStringObj("HSMPARAMS NOMHSM", -1),
		    Tcl_ObjPrintf("hsmtask_m_request: no M-HSM UUID is set: run "
			    "set_hsm_params -m_hsm_uuid with the UUID of the "
			    "CM's M-HSM (or use -cm_request_type INTERNAL)"));
	    goto done;
	}
    }
    if ((specs = calloc(t->nTickets, sizeof(*specs))) == NULL) {
	Spps_Error(interp, "PROJECT IO", "out of memory");
	goto done;
    }
    for (i = 0; i < t->nTickets; i++) {
	specs[i].name = t->tickets[i].name;
	specs[i].device = t->tickets[i].device;
	specs[i].action = t->tickets[i].action;
	specs[i].maxDevices = t->tickets[i].maxDevices;
    }
    req.jobName = j->name;
    req.taskName = t->name;
    snprintf(req.mhsmUuid, sizeof(req.mhsmUuid), "%s", mhsm);
    req.internal = t->internal;
    req.nTickets = t->nTickets;
    req.tickets = specs;
    if (role_uhsm_request(s->uhsm, &req, &image, &len, digest, &err) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("UHSM ERROR {%s}", t->name),
		Tcl_ObjPrintf("hsmtask_m_request: %s", err.msg));
	goto done;
    }
    path = JmNormalizePath(interp, Tcl_GetString(v[2]));
    LogOverwrite(interp, path);
    if (JmWriteFile(interp, path, image, len, 0644) != TCL_OK) {
	goto done;
    }
    oldState = t->state;
    memcpy(oldDigest, t->requestDigest, PROTO_DIGEST);
    memcpy(oldMhsm, t->mhsmUuid, sizeof(oldMhsm));
    oldFile = t->requestFile;
    oldTime = t->requested;
    t->state = JM_TASK_REQUESTED;
    memcpy(t->requestDigest, digest, PROTO_DIGEST);
    snprintf(t->mhsmUuid, sizeof(t->mhsmUuid), "%s", mhsm);
    t->requestFile = jm_strdup(path);
    t->requested = req.created;
    s->dirty = 1;
    if (t->requestFile == NULL || SaveAfter(interp, s, path) != TCL_OK) {
	free(t->requestFile);
	t->state = oldState;
	memcpy(t->requestDigest, oldDigest, PROTO_DIGEST);
	memcpy(t->mhsmUuid, oldMhsm, sizeof(oldMhsm));
	t->requestFile = oldFile;
	t->requested = oldTime;
	if (t->requestFile == NULL) {
	    Spps_Error(interp, "PROJECT IO", "out of memory");
	}
	goto done;
    }
    if (oldState == JM_TASK_REQUESTED) {
	Spps_Log(interp, "This request replaces the earlier request of HSM "
		"task '%s' (%s): a reply to that one will be refused.", t->name,
		oldFile ? oldFile : "");
    }
    free(oldFile);
    HexId(digest, 16, hex);
    Spps_Log(interp, "Job request for HSM task '%s' of job '%s' exported to "
	    "'%s': %lu tickets, for M-HSM %s%s; signed by U-HSM %s (request "
	    "%s...).", t->name, j->name, path, (unsigned long) t->nTickets, mhsm,
	    t->internal ? " (the M-HSM function of this U-HSM)" : "",
	    role_uhsm_uuid(s->uhsm), hex);
    Spps_LogSucceeded(interp, "hsmtask_m_request");
    Tcl_SetObjResult(interp, Tcl_NewStringObj(path, -1));
    rc = TCL_OK;

  done:
    free(specs);
    free(image);
    if (path != NULL) {
	Tcl_Free(path);
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* hsmtask_m_reply                                                      */
/* ------------------------------------------------------------------ */

/*
 * hsmtask_m_reply -job_name job -hsmtask_name task -reply_file file.rep
 */
static int
ReplyObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"job_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"hsmtask_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"reply_file", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[3];
    JmJob *j;
    JmTask *t;
    ProtoReply reply;
    ProtoError err;
    RoleFail why;
    uint8_t *image = NULL;
    size_t len = 0, i;
    char *path = NULL, **names = NULL, hex[2 * PROTO_DIGEST + 1];
    int rc = TCL_ERROR;

    (void) cd;
    memset(&reply, 0, sizeof(reply));
    if (JM_PARSE(interp, "hsmtask_m_reply -job_name \"job\" -hsmtask_name "
	    "\"task\" -reply_file \"reply file\"", opts, objc, objv, v)
	    != TCL_OK) {
	return TCL_ERROR;
    }
    if (JmRequireProject(interp, s, "hsmtask_m_reply") != TCL_OK
	    || FindTask(interp, s, "hsmtask_m_reply", v[0], v[1], &j, &t)
		!= TCL_OK
	    || JmRequireUhsm(interp, s, "hsmtask_m_reply") != TCL_OK) {
	goto done;
    }
    if (t->state == JM_TASK_CREATED) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("REPLY NOREQUEST {%s}", t->name),
		Tcl_ObjPrintf("hsmtask_m_reply: HSM task '%s' has no job request "
			"to answer (hsmtask_m_request first)", t->name));
	goto done;
    }
    if (t->state >= JM_TASK_BOUND) {
	char when[64];

	JmFormatTime(t->replied, when, sizeof(when));
	Spps_ErrorObj(interp, Tcl_ObjPrintf("REPLY DUPLICATE {%s}", t->name),
		Tcl_ObjPrintf("hsmtask_m_reply: a job reply was already imported "
			"into HSM task '%s' on %s: the task is bound to M-HSM %s",
			t->name, when, t->mhsmUuid));
	goto done;
    }
    path = JmNormalizePath(interp, Tcl_GetString(v[2]));
    if (JmReadFile(interp, "reply_file", path, MAX_PEER_FILE, &image, &len)
	    != TCL_OK) {
	goto done;
    }
    if ((names = calloc(t->nTickets + 1, sizeof(char *))) == NULL) {
	Spps_Error(interp, "PROJECT IO", "out of memory");
	goto done;
    }
    for (i = 0; i < t->nTickets; i++) {
	names[i] = t->tickets[i].name;
    }
    if (role_uhsm_reply_check(s->uhsm, image, len, path, t->requestDigest,
	    t->mhsmUuid, j->name, t->name, names, t->nTickets, &reply, &why,
	    &err) != 0) {
	Tcl_Obj *msg = Tcl_ObjPrintf("hsmtask_m_reply: %s", err.msg);

	snprintf(err.msg, sizeof(err.msg), "%s", Tcl_GetString(msg));
	Tcl_DecrRefCount(msg);
	JmRoleError(interp, "REPLY", why, path, &err);
	goto done;
    }
    /* Bind the task. */
    for (i = 0; i < t->nTickets; i++) {
	memcpy(t->tickets[i].id, reply.tickets[i].id, PROTO_TICKET_ID);
	t->tickets[i].hasId = 1;
    }
    proto_sha384(image, len, t->replyDigest);
    t->mhsmCert = reply.mhsmCert;
    memcpy(t->bindingNonce, reply.bindingNonce, PROTO_NONCE);
    t->replied = (uint64_t) time(NULL);
    t->state = JM_TASK_BOUND;
    s->dirty = 1;
    if (SaveAfter(interp, s, NULL) != TCL_OK) {
	for (i = 0; i < t->nTickets; i++) {
	    t->tickets[i].hasId = 0;
	    memset(t->tickets[i].id, 0, PROTO_TICKET_ID);
	}
	memset(t->replyDigest, 0, PROTO_DIGEST);
	memset(&t->mhsmCert, 0, sizeof(t->mhsmCert));
	memset(t->bindingNonce, 0, PROTO_NONCE);
	t->replied = 0;
	t->state = JM_TASK_REQUESTED;
	goto done;
    }
    Spps_Log(interp, "Job reply '%s' imported into HSM task '%s' of job '%s': "
	    "the task is bound to M-HSM %s (certified by the vendor root, "
	    "certificate serial %llu).", path, t->name, j->name, t->mhsmUuid,
	    (unsigned long long) t->mhsmCert.serial);
    for (i = 0; i < t->nTickets; i++) {
	HexId(t->tickets[i].id, PROTO_TICKET_ID, hex);
	Spps_Log(interp, "Ticket '%s': ID %s", t->tickets[i].name, hex);
    }
    Spps_LogSucceeded(interp, "hsmtask_m_reply");
    rc = TCL_OK;

  done:
    proto_reply_free(&reply);
    free(names);
    free(image);
    if (path != NULL) {
	Tcl_Free(path);
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* export_hsmtask                                                       */
/* ------------------------------------------------------------------ */

/* What one bitstream of an export is made of (freed by FreeExportParts). */
typedef struct ExportPart {
    JmProgData *data;
    JmBitstreamDef *def;
    JmJdc jdc;
    char features[64];
    char die[32];		/* canonical (sim_die_canon): "M2S090" */
    const JmExportedBitstream *earlier;	/* of a first export, or NULL */
} ExportPart;

/*
 * FreeBody --
 *	Frees the arrays of a body built by BuildBody (its content is
 *	borrowed from the JDC and the project).
 */
static void
FreeBody(ProtoBitstreamBody *b)
{
    /* The design parts point into the JDC and the project: only the
     * arrays are ours. */
    free(b->envm);
    free(b->snvm);
    free(b->security);
    memset(b, 0, sizeof(*b));
}

/*
 * BuildBody --
 *	The design part of a bitstream body from the JDC and the updates:
 *	fabric (FABRIC), eNVM clients (ENVM: all, or those -envm_clients
 *	chose; an update replaces a client's content), sNVM clients (SNVM),
 *	security settings (SECURITY).  Pointers into jdc and d.
 */
static int
BuildBody(const JmProgData *d, const JmBitstreamDef *def, const JmJdc *jdc,
	ProtoBitstreamBody *b)
{
    size_t i, k;

    memset(b, 0, sizeof(*b));
    if (def->features & JM_FEATURE_FABRIC) {
	b->fabric = jdc->fabric;
	b->fabricLen = jdc->fabricLen;
    }
    if ((def->features & JM_FEATURE_ENVM) && jdc->nEnvm > 0) {
	if ((b->envm = calloc(jdc->nEnvm, sizeof(ProtoNamedBytes))) == NULL) {
	    return -1;
	}
	for (i = 0; i < jdc->nEnvm; i++) {
	    const JmClient *c = &jdc->envm[i];
	    ProtoNamedBytes *nb;
	    int chosen = def->nEnvmClients == 0;

	    for (k = 0; k < def->nEnvmClients; k++) {
		if (strcmp(def->envmClients[k], c->name) == 0) {
		    chosen = 1;
		}
	    }
	    if (!chosen) {
		continue;
	    }
	    nb = &b->envm[b->nEnvm++];
	    nb->name = c->name;
	    nb->data = c->data;
	    nb->len = c->len;
	    for (k = 0; k < d->nEnvmUpdates; k++) {
		if (strcmp(d->envmUpdates[k].client, c->name) == 0) {
		    nb->data = d->envmUpdates[k].data;
		    nb->len = d->envmUpdates[k].len;
		}
	    }
	}
    }
    if ((def->features & JM_FEATURE_SNVM) && jdc->nSnvm > 0) {
	if ((b->snvm = calloc(jdc->nSnvm, sizeof(ProtoNamedBytes))) == NULL) {
	    return -1;
	}
	for (i = 0; i < jdc->nSnvm; i++) {
	    ProtoNamedBytes *nb = &b->snvm[b->nSnvm++];

	    nb->name = jdc->snvm[i].name;
	    nb->data = jdc->snvm[i].data;
	    nb->len = jdc->snvm[i].len;
	    for (k = 0; k < d->nSnvmUpdates; k++) {
		if (strcmp(d->snvmUpdates[k].client, nb->name) == 0) {
		    nb->data = d->snvmUpdates[k].data;
		    nb->len = d->snvmUpdates[k].len;
		}
	    }
	}
    }
    if ((def->features & JM_FEATURE_SECURITY) && jdc->nSecurity > 0) {
	if ((b->security = calloc(jdc->nSecurity, sizeof(ProtoNamedBytes)))
		== NULL) {
	    return -1;
	}
	for (i = 0; i < jdc->nSecurity; i++) {
	    b->security[i].name = jdc->security[i].name;
	    b->security[i].data = (uint8_t *) jdc->security[i].value;
	    b->security[i].len = strlen(jdc->security[i].value);
	}
	b->nSecurity = jdc->nSecurity;
    }
    return 0;
}

/*
 * export_hsmtask -job_name job -hsmtask_name task -location dir -name name
 *	Writes <location>/<name>.job.
 */
static int
ExportObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"job_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"hsmtask_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"location", SPPS_OPT_STRING, 1, NULL, NULL},
	{"name", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[4];
    JmJob *j;
    JmTask *t;
    ExportPart *parts = NULL;
    RoleExportBitstream *in = NULL;
    size_t *ticketBs = NULL, *deviceBs = NULL, nParts = 0, i, k, e;
    ProtoJob job;
    ProtoError err;
    RoleFail why;
    uint8_t *image = NULL;
    size_t len = 0;
    char *location = NULL, *path = NULL, hex[2 * PROTO_DIGEST + 1];
    const char *name;
    JmExportedBitstream *newExp = NULL, *oldExp;
    size_t oldNExp;
    JmTaskState oldState;
    char *oldJobFile;
    uint64_t oldExported;
    uint8_t oldJobDigest[PROTO_DIGEST];
    PlatError perr;
    int rc = TCL_ERROR;

    (void) cd;
    memset(&job, 0, sizeof(job));
    if (JM_PARSE(interp, "export_hsmtask -job_name \"job\" -hsmtask_name "
	    "\"task\" -location \"directory\" -name \"job file name\"", opts,
	    objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    name = Tcl_GetString(v[3]);
    if (JmRequireProject(interp, s, "export_hsmtask") != TCL_OK
	    || FindTask(interp, s, "export_hsmtask", v[0], v[1], &j, &t)
		!= TCL_OK
	    || JmRequireUhsm(interp, s, "export_hsmtask") != TCL_OK) {
	goto done;
    }
    if (name[0] == '\0' || strpbrk(name, "/\\:") != NULL) {
	Spps_Error(interp, "OPTION VALUE name", "Parameter 'name' has illegal "
		"value. Give the job file's name without a directory "
		"(-location gives the directory).");
	goto done;
    }
    if (t->state < JM_TASK_BOUND) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("EXPORT NOREPLY {%s}", t->name),
		Tcl_ObjPrintf("export_hsmtask: HSM task '%s' is %s: import the "
			"M-HSM's job reply first (hsmtask_m_reply); the job can "
			"only run on the M-HSM that answered the request",
			t->name, stateNames[t->state]));
	goto done;
    }
    if (j->nDevices == 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("JOB EMPTY {%s}", j->name),
		Tcl_ObjPrintf("export_hsmtask: job '%s' has no device", j->name));
	goto done;
    }
    /* One part per distinct bitstream of the chain. */
    parts = calloc(j->nDevices, sizeof(*parts));
    in = calloc(j->nDevices, sizeof(*in));
    deviceBs = calloc(j->nDevices, sizeof(size_t));
    ticketBs = calloc(t->nTickets + 1, sizeof(size_t));
    job.devices = calloc(j->nDevices, sizeof(ProtoJobDevice));
    job.bitstreams = calloc(j->nDevices, sizeof(ProtoBitstream));
    job.tickets = calloc(t->nTickets + 1, sizeof(ProtoJobTicket));
    if (parts == NULL || in == NULL || deviceBs == NULL || ticketBs == NULL
	    || job.devices == NULL || job.bitstreams == NULL
	    || job.tickets == NULL) {
	Spps_Error(interp, "PROJECT IO", "out of memory");
	goto done;
    }
    for (i = 0; i < j->nDevices; i++) {
	JmDevice *dev = &j->devices[i];
	JmProgData *d;
	JmBitstreamDef *def = DeviceBitstream(s->project, dev, &d);

	if (def == NULL) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("BITSTREAM UNKNOWN {%s}",
		    dev->bitstreamName), Tcl_ObjPrintf("export_hsmtask: device "
		    "'%s' uses bitstream '%s' of programming data '%s', which "
		    "does not exist", dev->name, dev->bitstreamName,
		    dev->dataName));
	    goto done;
	}
	if (d->keysetName == NULL || strcmp(def->protocol, "AUTH_CODE") != 0) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("EXPORT FLOW {%s}", dev->name),
		    Tcl_ObjPrintf("export_hsmtask: device '%s' of job '%s' uses "
			    "bitstream '%s', which is not an HSM-flow bitstream: "
			    "an HSM job needs MASTER or UEK1/2/3 bitstreams with "
			    "-use_protocol AUTH_CODE", dev->name, j->name,
			    def->name));
	    goto done;
	}
	for (k = 0; k < nParts; k++) {
	    if (strcmp(parts[k].def->name, def->name) == 0) {
		if (parts[k].data != d) {
		    Spps_ErrorObj(interp, Tcl_ObjPrintf("EXPORT NAME {%s}",
			    def->name), Tcl_ObjPrintf("export_hsmtask: job '%s' "
			    "uses two bitstreams named '%s' (of programming data "
			    "'%s' and '%s'): bitstreams of one job need distinct "
			    "names", j->name, def->name, parts[k].data->name,
			    d->name));
		    goto done;
		}
		break;
	    }
	}
	deviceBs[i] = k;
	if (k < nParts) {
	    continue;
	}
	parts[k].data = d;
	parts[k].def = def;
	if (jm_jdc_read(d->jdc, d->jdcLen, d->name, &parts[k].jdc, &err) != 0) {
	    nParts++;
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("JDC CORRUPT {%s}", d->name),
		    Tcl_ObjPrintf("export_hsmtask: %s", err.msg));
	    goto done;
	}
	nParts++;
	if (sim_die_canon(parts[k].jdc.die, parts[k].die) != 0) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("JDC DIE {%s}", parts[k].jdc.die),
		    Tcl_ObjPrintf("export_hsmtask: the design of programming data "
			    "'%s' is for die '%s', which spps does not know",
			    d->name, parts[k].jdc.die));
	    goto done;
	}
	jm_features_format(def->features, parts[k].features,
		sizeof(parts[k].features));
	for (e = 0; e < t->nExported; e++) {
	    if (strcmp(t->exportedBs[e].bitstreamName, def->name) == 0
		    && strcmp(t->exportedBs[e].dataName, d->name) == 0) {
		parts[k].earlier = &t->exportedBs[e];
	    }
	}
	if (t->state == JM_TASK_EXPORTED && parts[k].earlier == NULL) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("EXPORT CHANGED {%s}",
		    def->name), Tcl_ObjPrintf("export_hsmtask: bitstream '%s' "
		    "was not in the first export of HSM task '%s': the M-HSM "
		    "holds tickets for that one; add a new HSM task instead",
		    def->name, t->name));
	    goto done;
	}
    }
    /* The job as the role completes it. */
    job.jobName = j->name;
    job.taskName = t->name;
    job.jobType = j->type;
    snprintf(job.mhsmUuid, sizeof(job.mhsmUuid), "%s", t->mhsmUuid);
    memcpy(job.requestDigest, t->requestDigest, PROTO_DIGEST);
    memcpy(job.bindingNonce, t->bindingNonce, PROTO_NONCE);
    job.nDevices = j->nDevices;
    for (i = 0; i < j->nDevices; i++) {
	ExportPart *pt = &parts[deviceBs[i]];

	job.devices[i].name = j->devices[i].name;
	job.devices[i].hwLocation = j->devices[i].hwLocation;
	job.devices[i].family = pt->jdc.family;
	job.devices[i].die = pt->die;
	job.devices[i].bitstream = pt->def->name;
    }
    job.nBitstreams = nParts;
    for (k = 0; k < nParts; k++) {
	ProtoBitstream *b = &job.bitstreams[k];
	ExportPart *pt = &parts[k];

	b->name = pt->def->name;
	b->type = pt->def->type;
	b->family = pt->jdc.family;
	b->die = pt->die;
	b->designName = pt->jdc.designName;
	b->features = pt->features;
	b->protocol = pt->def->protocol;
	b->keyMode = pt->def->keyMode;
	b->generateCoc = pt->def->generateCoc;
	if (BuildBody(pt->data, pt->def, &pt->jdc, &in[k].body) != 0) {
	    Spps_Error(interp, "PROJECT IO", "out of memory");
	    goto done;
	}
	in[k].keyset = pt->data->keyset;
	in[k].keysetLen = pt->data->keysetLen;
	in[k].keysetWhat = pt->data->keysetName;
	in[k].programKeys = strcmp(pt->def->type, "MASTER") == 0
		&& (pt->def->features & JM_FEATURE_SECURITY);
	in[k].perDevice = pt->def->perDevice;
	in[k].nPerDevice = pt->def->nPerDevice;
	if (pt->earlier != NULL) {
	    in[k].wrappedKip = pt->earlier->wrappedKip;
	    in[k].wrappedKipLen = pt->earlier->wrappedKipLen;
	    in[k].expectDigest = pt->earlier->designDigest;
	}
    }
    job.nTickets = t->nTickets;
    for (i = 0; i < t->nTickets; i++) {
	JmTicket *tk = &t->tickets[i];
	JmDevice *dev = jm_find_device(j, tk->device);

	if (dev == NULL || !tk->hasId) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("TICKET UNKNOWN {%s}",
		    tk->name), Tcl_ObjPrintf("export_hsmtask: ticket '%s' has "
		    "no device or no ID", tk->name));
	    goto done;
	}
	memcpy(job.tickets[i].id, tk->id, PROTO_TICKET_ID);
	job.tickets[i].name = tk->name;
	job.tickets[i].device = tk->device;
	job.tickets[i].action = tk->action;
	job.tickets[i].maxDevices = tk->maxDevices;
	ticketBs[i] = deviceBs[dev - j->devices];
    }
    if (role_uhsm_export(s->uhsm, &job, &t->mhsmCert, in, ticketBs, &image,
	    &len, &why, &err) != 0) {
	Tcl_Obj *msg = Tcl_ObjPrintf("export_hsmtask: %s", err.msg);

	snprintf(err.msg, sizeof(err.msg), "%s", Tcl_GetString(msg));
	Tcl_DecrRefCount(msg);
	JmRoleError(interp, "EXPORT", why == ROLE_FAIL_MISMATCH
		? ROLE_FAIL_MISMATCH : why, t->name, &err);
	goto done;
    }
    /* New exported-bitstream records (KIPs wrapped under the master key). */
    if ((newExp = calloc(nParts, sizeof(*newExp))) == NULL) {
	Spps_Error(interp, "PROJECT IO", "out of memory");
	goto done;
    }
    for (k = 0; k < nParts; k++) {
	newExp[k].dataName = jm_strdup(parts[k].data->name);
	newExp[k].bitstreamName = jm_strdup(parts[k].def->name);
	memcpy(newExp[k].designDigest, job.bitstreams[k].designDigest,
		PROTO_DIGEST);
	newExp[k].wrappedKip = in[k].newWrappedKip;
	newExp[k].wrappedKipLen = in[k].newWrappedKipLen;
	in[k].newWrappedKip = NULL;
	if (newExp[k].dataName == NULL || newExp[k].bitstreamName == NULL) {
	    Spps_Error(interp, "PROJECT IO", "out of memory");
	    goto done;
	}
    }
    location = JmNormalizePath(interp, Tcl_GetString(v[2]));
    if (!plat_is_dir(location) && plat_mkdirs(location, 0755, &perr) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE IO {%s}", location),
		Tcl_ObjPrintf("export_hsmtask: %s", perr.msg));
	goto done;
    }
    path = Tcl_Alloc((unsigned) (strlen(location) + strlen(name) + 6));
    sprintf(path, "%s/%s.job", location, name);
    LogOverwrite(interp, path);
    if (JmWriteFile(interp, path, image, len, 0644) != TCL_OK) {
	goto done;
    }
    /* Record the export; undone if the project cannot be saved. */
    oldState = t->state;
    oldExp = t->exportedBs;
    oldNExp = t->nExported;
    oldJobFile = t->jobFile;
    oldExported = t->exported;
    memcpy(oldJobDigest, t->jobDigest, PROTO_DIGEST);
    t->state = JM_TASK_EXPORTED;
    t->exportedBs = newExp;
    t->nExported = nParts;
    t->jobFile = jm_strdup(path);
    t->exported = job.created;
    proto_sha384(image, len, t->jobDigest);
    s->dirty = 1;
    if (t->jobFile == NULL || SaveAfter(interp, s, path) != TCL_OK) {
	free(t->jobFile);
	t->state = oldState;
	t->exportedBs = oldExp;
	t->nExported = oldNExp;
	t->jobFile = oldJobFile;
	t->exported = oldExported;
	memcpy(t->jobDigest, oldJobDigest, PROTO_DIGEST);
	if (Tcl_GetString(Tcl_GetObjResult(interp))[0] == '\0') {
	    Spps_Error(interp, "PROJECT IO", "out of memory");
	}
	goto done;
    }
    newExp = NULL;
    for (k = 0; k < oldNExp; k++) {
	jm_exported_free(&oldExp[k]);
    }
    free(oldExp);
    free(oldJobFile);
    for (k = 0; k < nParts; k++) {
	HexId(job.bitstreams[k].designDigest, 16, hex);
	Spps_Log(interp, "Bitstream '%s' (%s, %s) generated: design '%s' "
		"for %s %s, design digest %s..., encrypted under %s bitstream "
		"key.", job.bitstreams[k].name, job.bitstreams[k].type,
		job.bitstreams[k].features, job.bitstreams[k].designName,
		job.bitstreams[k].family, job.bitstreams[k].die, hex,
		parts[k].earlier ? "its" : "a new");
    }
    Spps_Log(interp, "HSM job '%s' exported: job '%s', HSM task '%s', %lu "
	    "device(s), %lu ticket(s); the ticket secrets are sealed to M-HSM "
	    "%s and the job runs only there.", path, j->name, t->name,
	    (unsigned long) j->nDevices, (unsigned long) t->nTickets,
	    t->mhsmUuid);
    Spps_LogSucceeded(interp, "export_hsmtask");
    Tcl_SetObjResult(interp, Tcl_NewStringObj(path, -1));
    rc = TCL_OK;

  done:
    if (newExp != NULL) {
	for (k = 0; k < nParts; k++) {
	    jm_exported_free(&newExp[k]);
	}
	free(newExp);
    }
    for (k = 0; in != NULL && k < j->nDevices; k++) {
	FreeBody(&in[k].body);
	free(in[k].newWrappedKip);
    }
    for (k = 0; parts != NULL && k < nParts; k++) {
	jm_jdc_free(&parts[k].jdc);
    }
    for (k = 0; job.bitstreams != NULL && k < job.nBitstreams; k++) {
	free(job.bitstreams[k].cipher);
    }
    free(job.sealedSecrets);
    free(job.devices);
    free(job.bitstreams);
    free(job.tickets);
    free(parts);
    free(in);
    free(deviceBs);
    free(ticketBs);
    free(image);
    if (location != NULL) {
	Tcl_Free(location);
    }
    if (path != NULL) {
	Tcl_Free(path);
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* import_job_status                                                    */
/* ------------------------------------------------------------------ */

static Tcl_Obj *
LeftObj(int64_t max, int64_t completed, int64_t pending)
{
    if (max == PROTO_UNLIMITED) {
	return Tcl_NewStringObj("unlimited", -1);
    }
    return Tcl_NewWideIntObj((Tcl_WideInt) (max - completed - pending));
}

/* Appends a status record to the task (what was read, as read). */
static int
RecordStatus(JmTask *t, const char *path, const uint8_t *image, size_t len,
	uint64_t sequence, int isEnd, int valid, const char *summary)
{
    JmStatusRecord *r = JmGrow((void **) &t->statuses, &t->nStatuses,
	    sizeof(JmStatusRecord));

    if (r == NULL) {
	return -1;
    }
    r->file = jm_strdup(path);
    r->imported = (uint64_t) time(NULL);
    proto_sha384(image, len, r->digest);
    r->sequence = sequence;
    r->isEnd = isEnd;
    r->valid = valid;
    r->summary = jm_strdup(summary);
    r->image = malloc(len ? len : 1);
    if (r->file == NULL || r->summary == NULL || r->image == NULL) {
	jm_status_record_free(r);
	t->nStatuses--;
	return -1;
    }
    memcpy(r->image, image, len);
    r->imageLen = len;
    return 0;
}

/*
 * import_job_status -job_status_file file
 *	Finds the task the status belongs to (by its request), validates it
 *	inside the U-HSM, prints it (the layout of FlashPro Express's job
 *	status), records it in the project and saves; raises an error if
 *	anything failed validation (after recording).
 */
static int
ImportStatusObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"job_status_file", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[1], *res = NULL, *tickets, *cocs, *certs, *summary = NULL;
    char *path = NULL, *stJob = NULL, *stTask = NULL;
    uint8_t *image = NULL, reqDigest[PROTO_DIGEST];
    size_t len = 0, i, k, nValidCoc = 0, nValidCert = 0, nValidTicket = 0;
    JmJob *j = NULL;
    JmTask *t = NULL;
    RoleStatusTicket *rt = NULL;
    RoleStatusBitstream *rb = NULL;
    RoleStatusResult result;
    ProtoError err;
    RoleFail why;
    char hex[2 * PROTO_DIGEST + 1];
    uint64_t lastSeq = 0;
    int rc = TCL_ERROR, haveResult = 0;

    (void) cd;
    memset(&result, 0, sizeof(result));
    if (JM_PARSE(interp, "import_job_status -job_status_file \"job status "
	    "file\"", opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (JmRequireProject(interp, s, "import_job_status") != TCL_OK
	    || JmRequireUhsm(interp, s, "import_job_status") != TCL_OK) {
	goto done;
    }
    path = JmNormalizePath(interp, Tcl_GetString(v[0]));
    if (JmReadFile(interp, "job_status_file", path, MAX_PEER_FILE, &image,
	    &len) != TCL_OK) {
	goto done;
    }
    if (role_uhsm_status_peek(image, len, path, reqDigest, &stJob, &stTask,
	    &err) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("STATUS CORRUPT {%s}", path),
		Tcl_ObjPrintf("import_job_status: %s", err.msg));
	goto done;
    }
    for (i = 0; i < s->project->nJobs && t == NULL; i++) {
	for (k = 0; k < s->project->jobs[i].nTasks; k++) {
	    JmTask *c = &s->project->jobs[i].tasks[k];

	    if (c->state >= JM_TASK_REQUESTED
		    && memcmp(c->requestDigest, reqDigest, PROTO_DIGEST) == 0) {
		j = &s->project->jobs[i];
		t = c;
		break;
	    }
	}
    }
    if (t == NULL) {
	HexId(reqDigest, 16, hex);
	Spps_ErrorObj(interp, Tcl_ObjPrintf("STATUS UNKNOWN {%s}", path),
		Tcl_ObjPrintf("import_job_status: '%s' is a status of job '%s', "
			"HSM task '%s' (request %s...), which project '%s' does "
			"not have", path, stJob, stTask, hex, s->project->name));
	goto done;
    }
    if (t->state != JM_TASK_EXPORTED) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("STATUS NOTEXPORTED {%s}", t->name),
		Tcl_ObjPrintf("import_job_status: HSM task '%s' of job '%s' was "
			"never exported: no job of it can have run", t->name,
			j->name));
	goto done;
    }
    /* The task as the U-HSM validates it. */
    rt = calloc(t->nTickets + 1, sizeof(*rt));
    rb = calloc(t->nExported + 1, sizeof(*rb));
    if (rt == NULL || rb == NULL) {
	Spps_Error(interp, "PROJECT IO", "out of memory");
	goto done;
    }
    for (i = 0; i < t->nExported; i++) {
	rb[i].name = t->exportedBs[i].bitstreamName;
	rb[i].designDigest = t->exportedBs[i].designDigest;
	rb[i].wrappedKip = t->exportedBs[i].wrappedKip;
	rb[i].wrappedKipLen = t->exportedBs[i].wrappedKipLen;
    }
    for (i = 0; i < t->nTickets; i++) {
	JmDevice *dev = jm_find_device(j, t->tickets[i].device);

	rt[i].id = t->tickets[i].id;
	rt[i].name = t->tickets[i].name;
	rt[i].device = t->tickets[i].device;
	rt[i].action = t->tickets[i].action;
	rt[i].maxDevices = t->tickets[i].maxDevices;
	rt[i].bitstream = t->nExported;
	for (k = 0; dev != NULL && k < t->nExported; k++) {
	    if (strcmp(t->exportedBs[k].dataName, dev->dataName) == 0
		    && strcmp(t->exportedBs[k].bitstreamName,
			dev->bitstreamName) == 0) {
		rt[i].bitstream = k;
	    }
	}
    }
    for (i = 0; i < t->nStatuses; i++) {
	if (t->statuses[i].valid && t->statuses[i].sequence > lastSeq) {
	    lastSeq = t->statuses[i].sequence;
	}
    }
    Spps_Log(interp, "Importing job status '%s' of job '%s', HSM task '%s' "
	    "...", path, j->name, t->name);
    if (role_uhsm_status_check(s->uhsm, image, len, path, &t->mhsmCert,
	    t->requestDigest, j->name, t->name, rt, t->nTickets, rb,
	    t->nExported, &result, &why, &err) != 0) {
	/* Unusable as a whole: still recorded, then the error. */
	Tcl_Obj *msg = Tcl_ObjPrintf("import_job_status: %s", err.msg);

	Tcl_IncrRefCount(msg);
	if (RecordStatus(t, path, image, len, 0, 0, 0, err.msg) == 0) {
	    s->dirty = 1;
	    if (SaveAfter(interp, s, NULL) != TCL_OK) {
		jm_status_record_free(&t->statuses[--t->nStatuses]);
		Tcl_DecrRefCount(msg);
		goto done;
	    }
	}
	snprintf(err.msg, sizeof(err.msg), "%s", Tcl_GetString(msg));
	Tcl_DecrRefCount(msg);
	Spps_Log(interp, "%s", err.msg);
	JmRoleError(interp, "STATUS", why, path, &err);
	goto done;
    }
    haveResult = 1;

    /* Print and collect. */
    res = Tcl_NewDictObj();
    Tcl_IncrRefCount(res);
    tickets = Tcl_NewListObj(0, NULL);
    cocs = Tcl_NewListObj(0, NULL);
    certs = Tcl_NewListObj(0, NULL);
    Spps_Log(interp, "%s", result.status.isEnd ? "Job end status:"
	    : "Job status:");
    for (i = 0; i < result.status.nTickets; i++) {
	const ProtoTicketStatus *ts = &result.status.tickets[i];
	Tcl_Obj *left = LeftObj(ts->maxDevices, ts->completed, ts->pending);
	Tcl_Obj *d = Tcl_NewDictObj();

	HexId(ts->id, PROTO_TICKET_ID, hex);
	Spps_Log(interp, "%s", "");
	Spps_Log(interp, "Ticket ID: %s", hex);
	Spps_Log(interp, "Ticket Name: %s", ts->name);
	Spps_Log(interp, "Device Name: %s", ts->device);
	Spps_Log(interp, "Action: %s", ts->action);
	Spps_Log(interp, "Number of authorization codes left: %s",
		Tcl_GetString(left));
	if (ts->pending > 0) {
	    Spps_Log(interp, "Devices programmed: %lld; codes delivered but "
		    "not confirmed: %lld", (long long) ts->completed,
		    (long long) ts->pending);
	}
	if (!result.ticket[i].valid) {
	    Spps_Log(interp, "Ticket status: INVALID (%s)", result.ticket[i].why);
	} else {
	    nValidTicket++;
	}
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("id", -1),
		Tcl_NewStringObj(hex, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("name", -1),
		Tcl_NewStringObj(ts->name, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("device", -1),
		Tcl_NewStringObj(ts->device, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("action", -1),
		Tcl_NewStringObj(ts->action, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("max_device", -1),
		ts->maxDevices == PROTO_UNLIMITED
		? Tcl_NewStringObj("unlimited", -1)
		: Tcl_NewWideIntObj((Tcl_WideInt) ts->maxDevices));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("completed", -1),
		Tcl_NewWideIntObj((Tcl_WideInt) ts->completed));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("pending", -1),
		Tcl_NewWideIntObj((Tcl_WideInt) ts->pending));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("left", -1), left);
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("valid", -1),
		Tcl_NewBooleanObj(result.ticket[i].valid));
	Tcl_ListObjAppendElement(NULL, tickets, d);
    }
    if (result.status.nCocs > 0) {
	Spps_Log(interp, "%s", "");
	Spps_Log(interp, "Certificates of Conformance:");
    }
    for (i = 0; i < result.status.nCocs; i++) {
	const ProtoCoc *c = &result.status.cocs[i];
	const char *tname = "?";
	char dsn[2 * PROTO_DSN + 1];
	Tcl_Obj *d = Tcl_NewDictObj();

	for (k = 0; k < t->nTickets; k++) {
	    if (memcmp(t->tickets[k].id, c->ticketId, PROTO_TICKET_ID) == 0) {
		tname = t->tickets[k].name;
	    }
	}
	proto_hex(c->dsn, PROTO_DSN, dsn);
	if (result.coc[i].valid) {
	    nValidCoc++;
	    Spps_Log(interp, "CoC %lu: device DSN %s, ticket '%s', action %s, "
		    "device counter %llu: valid", (unsigned long) (i + 1), dsn,
		    tname, c->action,
		    (unsigned long long) c->deviceCounter);
	} else {
	    Spps_Log(interp, "CoC %lu: device DSN %s, ticket '%s', action %s, "
		    "device counter %llu: INVALID (%s)", (unsigned long) (i + 1),
		    dsn, tname,
		    c->action, (unsigned long long) c->deviceCounter,
		    result.coc[i].why);
	}
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("dsn", -1),
		Tcl_NewStringObj(dsn, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("ticket", -1),
		Tcl_NewStringObj(tname, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("action", -1),
		Tcl_NewStringObj(c->action, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("valid", -1),
		Tcl_NewBooleanObj(result.coc[i].valid));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("why", -1),
		Tcl_NewStringObj(result.coc[i].why, -1));
	Tcl_ListObjAppendElement(NULL, cocs, d);
    }
    if (result.status.nCertifiers > 0 || result.nMissing > 0) {
	Spps_Log(interp, "%s", "");
	Spps_Log(interp, "Ticket end certifiers:");
    }
    for (i = 0; i < result.status.nCertifiers; i++) {
	const ProtoCertifier *ce = &result.status.certifiers[i];
	char when[64];
	Tcl_Obj *d = Tcl_NewDictObj(), *max = ce->maxDevices == PROTO_UNLIMITED
		? Tcl_NewStringObj("unlimited", -1)
		: Tcl_NewWideIntObj((Tcl_WideInt) ce->maxDevices);

	Tcl_IncrRefCount(max);
	JmFormatTime(ce->removed, when, sizeof(when));
	HexId(ce->ticketId, PROTO_TICKET_ID, hex);
	if (result.certifier[i].valid) {
	    nValidCert++;
	}
	Spps_Log(interp, "Ticket '%s' (ID %s, %s): %s on %s, max %s, "
		"completed %lld, pending %lld: %s%s%s%s", ce->ticketName, hex,
		ce->action, ce->endType, when, Tcl_GetString(max),
		(long long) ce->completed, (long long) ce->pending,
		result.certifier[i].valid ? "valid" : "INVALID",
		result.certifier[i].valid ? "" : " (",
		result.certifier[i].why,
		result.certifier[i].valid ? "" : ")");
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("ticket", -1),
		Tcl_NewStringObj(ce->ticketName, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("end_type", -1),
		Tcl_NewStringObj(ce->endType, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("max_device", -1), max);
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("completed", -1),
		Tcl_NewWideIntObj((Tcl_WideInt) ce->completed));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("pending", -1),
		Tcl_NewWideIntObj((Tcl_WideInt) ce->pending));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("valid", -1),
		Tcl_NewBooleanObj(result.certifier[i].valid));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("why", -1),
		Tcl_NewStringObj(result.certifier[i].why, -1));
	Tcl_DecrRefCount(max);
	Tcl_ListObjAppendElement(NULL, certs, d);
    }
    for (i = 0; i < result.nMissing; i++) {
	Spps_Log(interp, "Ticket '%s': no end certifier: INVALID (an end status "
		"certifies the removal of every ticket of the task)",
		result.missing[i]);
    }
    summary = Tcl_ObjPrintf("%s '%s': %lu ticket(s)",
	    result.status.isEnd ? "Job end status" : "Job status", path,
	    (unsigned long) result.status.nTickets);
    if (nValidTicket < result.status.nTickets) {
	Tcl_AppendPrintfToObj(summary, " (%lu INVALID)",
		(unsigned long) (result.status.nTickets - nValidTicket));
    }
    Tcl_AppendPrintfToObj(summary, "; %lu CoC(s): %lu valid, %lu INVALID",
	    (unsigned long) result.status.nCocs, (unsigned long) nValidCoc,
	    (unsigned long) (result.status.nCocs - nValidCoc));
    if (result.status.isEnd) {
	Tcl_AppendPrintfToObj(summary, "; %lu end certifier(s): %lu valid, "
		"%lu INVALID", (unsigned long) result.status.nCertifiers,
		(unsigned long) nValidCert,
		(unsigned long) (result.status.nCertifiers - nValidCert));
	if (result.nMissing > 0) {
	    Tcl_AppendPrintfToObj(summary, ", %lu missing",
		    (unsigned long) result.nMissing);
	}
    }
    Tcl_AppendPrintfToObj(summary, "; signed by M-HSM %s: %s.",
	    t->mhsmUuid, result.allValid ? "all valid"
	    : "VALIDATION FAILED");
    Tcl_IncrRefCount(summary);
    Spps_Log(interp, "%s", "");
    if (result.status.sequence < lastSeq) {
	Spps_Log(interp, "Note: this status (sequence %llu) is older than one "
		"imported before (sequence %llu).",
		(unsigned long long) result.status.sequence,
		(unsigned long long) lastSeq);
    }
    Spps_Log(interp, "%s", Tcl_GetString(summary));

    /* Record what was read, valid or not, and save. */
    if (RecordStatus(t, path, image, len, result.status.sequence,
	    result.status.isEnd, result.allValid, Tcl_GetString(summary)) != 0) {
	Spps_Error(interp, "PROJECT IO", "out of memory");
	goto done;
    }
    s->dirty = 1;
    if (SaveAfter(interp, s, NULL) != TCL_OK) {
	jm_status_record_free(&t->statuses[--t->nStatuses]);
	goto done;
    }
    if (!result.allValid) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("STATUS INVALID {%s}", path),
		Tcl_ObjPrintf("import_job_status: %s (recorded in project "
			"'%s')", Tcl_GetString(summary), s->project->name));
	goto done;
    }
    Tcl_DictObjPut(NULL, res, Tcl_NewStringObj("job", -1),
	    Tcl_NewStringObj(j->name, -1));
    Tcl_DictObjPut(NULL, res, Tcl_NewStringObj("hsmtask", -1),
	    Tcl_NewStringObj(t->name, -1));
    Tcl_DictObjPut(NULL, res, Tcl_NewStringObj("end", -1),
	    Tcl_NewBooleanObj(result.status.isEnd));
    Tcl_DictObjPut(NULL, res, Tcl_NewStringObj("end_type", -1),
	    Tcl_NewStringObj(result.status.endType ? result.status.endType
		    : "", -1));
    Tcl_DictObjPut(NULL, res, Tcl_NewStringObj("sequence", -1),
	    Tcl_NewWideIntObj((Tcl_WideInt) result.status.sequence));
    Tcl_DictObjPut(NULL, res, Tcl_NewStringObj("valid", -1),
	    Tcl_NewBooleanObj(result.allValid));
    Tcl_DictObjPut(NULL, res, Tcl_NewStringObj("tickets", -1), tickets);
    Tcl_DictObjPut(NULL, res, Tcl_NewStringObj("cocs", -1), cocs);
    Tcl_DictObjPut(NULL, res, Tcl_NewStringObj("certifiers", -1), certs);
    Spps_LogSucceeded(interp, "import_job_status");
    Tcl_SetObjResult(interp, res);
    rc = TCL_OK;

  done:
    if (res != NULL) {
	Tcl_DecrRefCount(res);
    }
    if (summary != NULL) {
	Tcl_DecrRefCount(summary);
    }
    if (haveResult) {
	role_uhsm_status_result_free(&result);
    }
    free(rt);
    free(rb);
    free(stJob);
    free(stTask);
    free(image);
    if (path != NULL) {
	Tcl_Free(path);
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Listings                                                             */
/* ------------------------------------------------------------------ */

static int
ListTasksObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"job_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[1], *l;
    JmJob *j;
    size_t i;
    int rc = TCL_ERROR;

    (void) cd;
    if (JM_PARSE(interp, "list_hsmtasks -job_name \"job\"", opts, objc, objv,
	    v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (JmRequireProject(interp, s, "list_hsmtasks") == TCL_OK
	    && JmFindJob(interp, s, "list_hsmtasks", Tcl_GetString(v[0]), &j)
		== TCL_OK) {
	l = Tcl_NewListObj(0, NULL);
	for (i = 0; i < j->nTasks; i++) {
	    Tcl_ListObjAppendElement(NULL, l,
		    Tcl_NewStringObj(j->tasks[i].name, -1));
	}
	Tcl_SetObjResult(interp, l);
	rc = TCL_OK;
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * get_hsmtask_info -job_name job -hsmtask_name task
 */
static int
GetTaskInfoObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"job_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"hsmtask_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[2], *res, *tl, *sl;
    JmJob *j;
    JmTask *t;
    char hex[2 * PROTO_DIGEST + 1];
    size_t i;
    int rc = TCL_ERROR;

    (void) cd;
    if (JM_PARSE(interp, "get_hsmtask_info -job_name \"job\" -hsmtask_name "
	    "\"task\"", opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (JmRequireProject(interp, s, "get_hsmtask_info") != TCL_OK
	    || FindTask(interp, s, "get_hsmtask_info", v[0], v[1], &j, &t)
		!= TCL_OK) {
	goto done;
    }
    res = Tcl_NewDictObj();
#define PUT(k, o) Tcl_DictObjPut(NULL, res, Tcl_NewStringObj(k, -1), (o))
    PUT("name", Tcl_NewStringObj(t->name, -1));
    PUT("state", Tcl_NewStringObj(stateNames[t->state], -1));
    PUT("cm_request_type", Tcl_NewStringObj(t->internal ? "INTERNAL"
	    : "EXTERNAL", -1));
    PUT("m_hsm_uuid", Tcl_NewStringObj(t->mhsmUuid, -1));
    if (t->state >= JM_TASK_REQUESTED) {
	proto_hex(t->requestDigest, PROTO_DIGEST, hex);
    } else {
	hex[0] = '\0';
    }
    PUT("request_digest", Tcl_NewStringObj(hex, -1));
    PUT("request_file", Tcl_NewStringObj(t->requestFile ? t->requestFile
	    : "", -1));
    PUT("job_file", Tcl_NewStringObj(t->jobFile ? t->jobFile : "", -1));
    tl = Tcl_NewListObj(0, NULL);
    for (i = 0; i < t->nTickets; i++) {
	const JmTicket *k = &t->tickets[i];
	Tcl_Obj *d = Tcl_NewDictObj();

	if (k->hasId) {
	    proto_hex(k->id, PROTO_TICKET_ID, hex);
	} else {
	    hex[0] = '\0';
	}
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("name", -1),
		Tcl_NewStringObj(k->name, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("device", -1),
		Tcl_NewStringObj(k->device, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("action", -1),
		Tcl_NewStringObj(k->action, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("max_device", -1),
		k->maxDevices == PROTO_UNLIMITED
		? Tcl_NewStringObj("unlimited", -1)
		: Tcl_NewWideIntObj((Tcl_WideInt) k->maxDevices));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("id", -1),
		Tcl_NewStringObj(hex, -1));
	Tcl_ListObjAppendElement(NULL, tl, d);
    }
    PUT("tickets", tl);
    sl = Tcl_NewListObj(0, NULL);
    for (i = 0; i < t->nStatuses; i++) {
	const JmStatusRecord *r = &t->statuses[i];
	Tcl_Obj *d = Tcl_NewDictObj();

	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("file", -1),
		Tcl_NewStringObj(r->file, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("sequence", -1),
		Tcl_NewWideIntObj((Tcl_WideInt) r->sequence));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("end", -1),
		Tcl_NewBooleanObj(r->isEnd));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("valid", -1),
		Tcl_NewBooleanObj(r->valid));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("summary", -1),
		Tcl_NewStringObj(r->summary, -1));
	Tcl_ListObjAppendElement(NULL, sl, d);
    }
    PUT("statuses", sl);
#undef PUT
    Tcl_SetObjResult(interp, res);
    rc = TCL_OK;

  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

const JmCommand jmTaskCommands[] = {
    {"add_hsmtask_to_job", AddTaskObjCmd},
    {"export_hsmtask", ExportObjCmd},
    {"get_hsmtask_info", GetTaskInfoObjCmd},
    {"hsmtask_m_reply", ReplyObjCmd},
    {"hsmtask_m_request", RequestObjCmd},
    {"import_job_status", ImportStatusObjCmd},
    {"list_hsmtasks", ListTasksObjCmd},
    {"new_hsmtask_ticket", NewTicketObjCmd},
    {"remove_hsmtask", RemoveTaskObjCmd},
    {"remove_hsmtask_ticket", RemoveTicketObjCmd},
    {NULL, NULL}
};
