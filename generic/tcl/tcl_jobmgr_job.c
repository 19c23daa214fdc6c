/*
 * tcl_jobmgr_job.c --
 *
 *	Programming jobs of a Job Manager project and their JTAG chains
 *	(doc/jobmgr.n): new_prog_job, remove_prog_job,
 *	add_microsemi_prog_device, remove_microsemi_prog_device,
 *	list_prog_jobs, get_prog_job_info.
 */

#include "tcl_jobmgr.h"

#include <stdlib.h>
#include <string.h>

/*
 * JmFindJob --
 *	The job of that name, or the error {SPPS JOB UNKNOWN name}.
 */
int
JmFindJob(Tcl_Interp *interp, JmSession *s, const char *cmd, const char *name,
	JmJob **job)
{
    *job = jm_find_job(s->project, name);
    if (*job == NULL) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("JOB UNKNOWN {%s}", name),
		Tcl_ObjPrintf("%s: job '%s' does not exist in project '%s'", cmd,
			name, s->project->name));
    }
    return TCL_OK;
}

/* 1 if any task of the job was exported (its job is out at a CM). */
static const JmTask *
ExportedTask(const JmJob *j)
{
    size_t i;

    for (i = 0; i < j->nTasks; i++) {
	if (j->tasks[i].state == JM_TASK_EXPORTED) {
	    return &j->tasks[i];
	}
    }
    return NULL;
}

/*
 * new_prog_job -job_name name -job_type FPExpress|IHP
 */
static int
NewProgJobObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const char *const types[] = {"FPExpress", "IHP", NULL};
    static const SppsOption opts[] = {
	{"job_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"job_type", SPPS_OPT_ENUM, 1, types, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[2];
    JmJob *j;
    const char *name;
    int rc = TCL_ERROR;

    (void) cd;
    if (JM_PARSE(interp, "new_prog_job -job_name \"name\" -job_type "
	    "\"FPExpress | IHP\"", opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    name = Tcl_GetString(v[0]);
    if (JmRequireProject(interp, s, "new_prog_job") != TCL_OK
	    || JmCheckName(interp, "job_name", v[0]) != TCL_OK) {
	goto done;
    }
    if (jm_find_job(s->project, name) != NULL) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("JOB DUPLICATE {%s}", name),
		Tcl_ObjPrintf("new_prog_job: job '%s' already exists in project "
			"'%s'", name, s->project->name));
	goto done;
    }
    j = JmGrow((void **) &s->project->jobs, &s->project->nJobs, sizeof(JmJob));
    if (j == NULL || (j->name = jm_strdup(name)) == NULL
	    || (j->type = jm_strdup(Tcl_GetString(v[1]))) == NULL) {
	if (j != NULL) {
	    jm_job_free(j);
	    s->project->nJobs--;
	}
	Spps_Error(interp, "PROJECT IO", "new_prog_job: out of memory");
	goto done;
    }
    s->dirty = 1;
    Spps_Log(interp, "Programming job '%s' (%s) created.", j->name, j->type);
    Spps_LogSucceeded(interp, "new_prog_job");
    rc = TCL_OK;

  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * remove_prog_job -job_name name ?-force bool?
 *	A job with an exported HSM task is kept unless -force TRUE: its
 *	status files could not be validated any more.
 */
static int
RemoveProgJobObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"job_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"force", SPPS_OPT_BOOL, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[2];
    JmJob *j;
    const JmTask *t;
    int force = 0, rc = TCL_ERROR;

    (void) cd;
    if (JM_PARSE(interp, "remove_prog_job -job_name \"name\" [-force \"TRUE | "
	    "FALSE\"]", opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (v[1] != NULL) {
	Tcl_GetBooleanFromObj(NULL, v[1], &force);
    }
    if (JmRequireProject(interp, s, "remove_prog_job") != TCL_OK
	    || JmFindJob(interp, s, "remove_prog_job", Tcl_GetString(v[0]), &j)
		!= TCL_OK) {
	goto done;
    }
    if ((t = ExportedTask(j)) != NULL && !force) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("JOB INUSE {%s}", j->name),
		Tcl_ObjPrintf("remove_prog_job: HSM task '%s' of job '%s' was "
			"exported: without the job its status files cannot be "
			"validated; give -force TRUE to remove it anyway",
			t->name, j->name));
	goto done;
    }
    Spps_Log(interp, "Programming job '%s' removed.", j->name);
    jm_job_free(j);
    JmRemoveAt(s->project->jobs, &s->project->nJobs, sizeof(JmJob),
	    (size_t) (j - s->project->jobs));
    s->dirty = 1;
    Spps_LogSucceeded(interp, "remove_prog_job");
    rc = TCL_OK;

  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * add_microsemi_prog_device -job_name job -device_name name
 *	-device_hw_location N -data_name data -bitstream_name bitstream
 */
static int
AddDeviceObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"job_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"device_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"device_hw_location", SPPS_OPT_INT, 1, NULL, NULL},
	{"data_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"bitstream_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    static const char usage[] = "add_microsemi_prog_device -job_name \"job\" "
	    "-device_name \"name\" -device_hw_location \"position\" -data_name "
	    "\"name\" -bitstream_name \"name\"";
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[5];
    JmJob *j;
    JmProgData *d;
    JmDevice *dev;
    Tcl_WideInt loc;
    const char *name;
    size_t i;
    int rc = TCL_ERROR;

    (void) cd;
    if (JM_PARSE(interp, usage, opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    name = Tcl_GetString(v[1]);
    Tcl_GetWideIntFromObj(NULL, v[2], &loc);
    if (JmRequireProject(interp, s, "add_microsemi_prog_device") != TCL_OK
	    || JmCheckName(interp, "device_name", v[1]) != TCL_OK
	    || JmFindJob(interp, s, "add_microsemi_prog_device",
		    Tcl_GetString(v[0]), &j) != TCL_OK) {
	goto done;
    }
    if (loc < 1 || loc > 1024) {
	Spps_Error(interp, "OPTION VALUE device_hw_location", "Parameter "
		"'device_hw_location' has illegal value. The position in the "
		"JTAG chain is 1 to 1024.");
	goto done;
    }
    if (jm_find_device(j, name) != NULL) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("DEVICE DUPLICATE {%s}", name),
		Tcl_ObjPrintf("add_microsemi_prog_device: job '%s' already has "
			"a device '%s'", j->name, name));
	goto done;
    }
    for (i = 0; i < j->nDevices; i++) {
	if (j->devices[i].hwLocation == (int64_t) loc) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("DEVICE LOCATION %lld",
		    (long long) loc), Tcl_ObjPrintf("add_microsemi_prog_device: "
		    "position %lld of the chain of job '%s' is taken by device "
		    "'%s'", (long long) loc, j->name, j->devices[i].name));
	    goto done;
	}
    }
    if (strcmp(j->type, "IHP") == 0 && j->nDevices > 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("JOB IHP {%s}", j->name),
		Tcl_ObjPrintf("add_microsemi_prog_device: an IHP job programs "
			"exactly one device; job '%s' has '%s'", j->name,
			j->devices[0].name));
	goto done;
    }
    if ((d = jm_find_data(s->project, Tcl_GetString(v[3]))) == NULL) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("DATA UNKNOWN {%s}",
		Tcl_GetString(v[3])), Tcl_ObjPrintf("add_microsemi_prog_device: "
		"programming data '%s' does not exist in project '%s'",
		Tcl_GetString(v[3]), s->project->name));
	goto done;
    }
    if (jm_find_bitstream(d, Tcl_GetString(v[4])) == NULL) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("BITSTREAM UNKNOWN {%s}",
		Tcl_GetString(v[4])), Tcl_ObjPrintf("add_microsemi_prog_device: "
		"programming data '%s' has no bitstream '%s' (init_bitstream "
		"first)", d->name, Tcl_GetString(v[4])));
	goto done;
    }
    if (strcmp(j->type, "IHP") == 0 && d->keysetName == NULL) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("JOB IHP {%s}", j->name),
		Tcl_ObjPrintf("add_microsemi_prog_device: IHP jobs are HSM jobs; "
			"programming data '%s' has no keyset", d->name));
	goto done;
    }
    dev = JmGrow((void **) &j->devices, &j->nDevices, sizeof(JmDevice));
    if (dev == NULL || (dev->name = jm_strdup(name)) == NULL
	    || (dev->dataName = jm_strdup(d->name)) == NULL
	    || (dev->bitstreamName = jm_strdup(Tcl_GetString(v[4]))) == NULL) {
	if (dev != NULL) {
	    jm_device_free(dev);
	    j->nDevices--;
	}
	Spps_Error(interp, "PROJECT IO", "out of memory");
	goto done;
    }
    dev->hwLocation = (int64_t) loc;
    s->dirty = 1;
    Spps_Log(interp, "Device '%s' added to job '%s' at position %lld of the "
	    "JTAG chain: bitstream '%s' of programming data '%s'.", dev->name,
	    j->name, (long long) loc, dev->bitstreamName, dev->dataName);
    Spps_LogSucceeded(interp, "add_microsemi_prog_device");
    rc = TCL_OK;

  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * remove_microsemi_prog_device -job_name job -device_name name
 */
static int
RemoveDeviceObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"job_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"device_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[2];
    JmJob *j;
    JmDevice *dev;
    size_t i, k;
    int rc = TCL_ERROR;

    (void) cd;
    if (JM_PARSE(interp, "remove_microsemi_prog_device -job_name \"job\" "
	    "-device_name \"name\"", opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (JmRequireProject(interp, s, "remove_microsemi_prog_device") != TCL_OK
	    || JmFindJob(interp, s, "remove_microsemi_prog_device",
		    Tcl_GetString(v[0]), &j) != TCL_OK) {
	goto done;
    }
    if ((dev = jm_find_device(j, Tcl_GetString(v[1]))) == NULL) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("DEVICE UNKNOWN {%s}",
		Tcl_GetString(v[1])), Tcl_ObjPrintf("remove_microsemi_prog_device: "
		"job '%s' has no device '%s'", j->name, Tcl_GetString(v[1])));
	goto done;
    }
    for (i = 0; i < j->nTasks; i++) {
	for (k = 0; k < j->tasks[i].nTickets; k++) {
	    if (strcmp(j->tasks[i].tickets[k].device, dev->name) == 0) {
		Spps_ErrorObj(interp, Tcl_ObjPrintf("DEVICE INUSE {%s}",
			dev->name), Tcl_ObjPrintf("remove_microsemi_prog_device: "
			"device '%s' has ticket '%s' in HSM task '%s'",
			dev->name, j->tasks[i].tickets[k].name,
			j->tasks[i].name));
		goto done;
	    }
	}
    }
    Spps_Log(interp, "Device '%s' removed from job '%s'.", dev->name, j->name);
    jm_device_free(dev);
    JmRemoveAt(j->devices, &j->nDevices, sizeof(JmDevice),
	    (size_t) (dev - j->devices));
    s->dirty = 1;
    Spps_LogSucceeded(interp, "remove_microsemi_prog_device");
    rc = TCL_OK;

  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * ListProgJobsObjCmd --
 *	list_prog_jobs: the names of the jobs.
 */
static int
ListProgJobsObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {{NULL, 0, 0, NULL, NULL}};
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[1], *l;
    size_t i;

    (void) cd;
    if (JM_PARSE(interp, "list_prog_jobs", opts, objc, objv, v) != TCL_OK
	    || JmRequireProject(interp, s, "list_prog_jobs") != TCL_OK) {
	return TCL_ERROR;
    }
    l = Tcl_NewListObj(0, NULL);
    for (i = 0; i < s->project->nJobs; i++) {
	Tcl_ListObjAppendElement(NULL, l,
		Tcl_NewStringObj(s->project->jobs[i].name, -1));
    }
    Tcl_SetObjResult(interp, l);
    return TCL_OK;
}

/*
 * get_prog_job_info -job_name name
 */
static int
GetProgJobInfoObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"job_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[1], *res, *devs, *tasks;
    JmJob *j;
    size_t i;
    int rc = TCL_ERROR;

    (void) cd;
    if (JM_PARSE(interp, "get_prog_job_info -job_name \"name\"", opts, objc,
	    objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (JmRequireProject(interp, s, "get_prog_job_info") != TCL_OK
	    || JmFindJob(interp, s, "get_prog_job_info", Tcl_GetString(v[0]),
		    &j) != TCL_OK) {
	goto done;
    }
    res = Tcl_NewDictObj();
    devs = Tcl_NewListObj(0, NULL);
    for (i = 0; i < j->nDevices; i++) {
	Tcl_Obj *d = Tcl_NewDictObj();

	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("name", -1),
		Tcl_NewStringObj(j->devices[i].name, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("device_hw_location", -1),
		Tcl_NewWideIntObj((Tcl_WideInt) j->devices[i].hwLocation));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("data_name", -1),
		Tcl_NewStringObj(j->devices[i].dataName, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("bitstream_name", -1),
		Tcl_NewStringObj(j->devices[i].bitstreamName, -1));
	Tcl_ListObjAppendElement(NULL, devs, d);
    }
    tasks = Tcl_NewListObj(0, NULL);
    for (i = 0; i < j->nTasks; i++) {
	Tcl_ListObjAppendElement(NULL, tasks,
		Tcl_NewStringObj(j->tasks[i].name, -1));
    }
    Tcl_DictObjPut(NULL, res, Tcl_NewStringObj("name", -1),
	    Tcl_NewStringObj(j->name, -1));
    Tcl_DictObjPut(NULL, res, Tcl_NewStringObj("job_type", -1),
	    Tcl_NewStringObj(j->type, -1));
    Tcl_DictObjPut(NULL, res, Tcl_NewStringObj("devices", -1), devs);
    Tcl_DictObjPut(NULL, res, Tcl_NewStringObj("hsmtasks", -1), tasks);
    Tcl_SetObjResult(interp, res);
    rc = TCL_OK;

  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

const JmCommand jmJobCommands[] = {
    {"add_microsemi_prog_device", AddDeviceObjCmd},
    {"get_prog_job_info", GetProgJobInfoObjCmd},
    {"list_prog_jobs", ListProgJobsObjCmd},
    {"new_prog_job", NewProgJobObjCmd},
    {"remove_microsemi_prog_device", RemoveDeviceObjCmd},
    {"remove_prog_job", RemoveProgJobObjCmd},
    {NULL, NULL}
};
