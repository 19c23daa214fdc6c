/*
 * tcl_sim.c --
 *
 *	spps::sim, the simulated bench from Tcl (doc/spps_sim.n): programmers,
 *	boards and their devices, and the fault switch.  Both tools' scripts
 *	and test suites use it; the bench itself is sim.h's, shared by every
 *	process on one SPPS_HOME.
 *
 *	    spps::sim::programmer add ?-name NAME? ?-type TYPE?
 *	    spps::sim::programmer remove NAME
 *	    spps::sim::programmer list
 *	    spps::sim::programmer info NAME
 *	    spps::sim::board insert ?-programmer NAME? ?-die DIE? ?-dsn HEX?
 *	    spps::sim::board pull NAME
 *	    spps::sim::board info DSN
 *	    spps::sim::board list
 *	    spps::sim::device list
 *	    spps::sim::fault set pull_board ?-at STEP? ?-programmer NAME?
 *	    spps::sim::fault clear
 *	    spps::sim::fault list
 */

#include "spps_tcl.h"

#include <stdlib.h>
#include <string.h>

#include "sim/sim.h"

#define SIM_KEY "spps::sim"

/* ------------------------------------------------------------------ */
/* The bench of an interpreter                                          */
/* ------------------------------------------------------------------ */

/*
 * BenchDelete --
 *	Closes an interpreter's bench when the interpreter goes.
 */
static void
BenchDelete(ClientData clientData, Tcl_Interp *interp)
{
    (void) interp;
    sim_bench_close(clientData);
}

/*
 * GetBench --
 *	The interpreter's bench, opened on first use.
 */
static SimBench *
GetBench(Tcl_Interp *interp)
{
    SimBench *bench = Tcl_GetAssocData(interp, SIM_KEY, NULL);
    SimError err;

    if (bench == NULL) {
	if (sim_bench_open(&bench, &err) != 0) {
	    Spps_Error(interp, "BENCH FAIL", "%s", err.e.msg);
	    return NULL;
	}
	Tcl_SetAssocData(interp, SIM_KEY, BenchDelete, bench);
    }
    return bench;
}

/* A bench refusal as {SPPS BENCH|PROGRAMMER ... COND}. */
static int
SimError_(Tcl_Interp *interp, const SimError *err)
{
    static const char *const codes[] = {
	"BENCH FAIL", "BENCH FAIL", "PROGRAMMER UNKNOWN", "PROGRAMMER EXISTS",
	"BENCH NO_BOARD", "BENCH NO_DEVICE", "BENCH VALUE", "BENCH PULLED",
	"BENCH REFUSED", "BENCH VERIFY"
    };
    const char *code = (err->cond >= 0 && (size_t) err->cond
	    < sizeof(codes) / sizeof(*codes)) ? codes[err->cond] : "BENCH FAIL";

    return Spps_Error(interp, code, "%s", err->e.msg);
}

/* "-opt value" pairs of a subcommand against a list of option names. */
static int
ParsePairs(Tcl_Interp *interp, int first, int objc, Tcl_Obj *const objv[],
	const char *const *names, Tcl_Obj **values)
{
    int i, idx;

    for (i = 0; names[i] != NULL; i++) {
	values[i] = NULL;
    }
    for (i = first; i < objc; i += 2) {
	if (Tcl_GetIndexFromObj(interp, objv[i], names, "option", 0,
		&idx) != TCL_OK) {
	    Tcl_SetErrorCode(interp, "SPPS", "OPTION", "UNKNOWN",
		    Tcl_GetString(objv[i]), NULL);
	    return TCL_ERROR;
	}
	if (i + 1 >= objc) {
	    return Spps_ErrorObj(interp, Tcl_ObjPrintf("OPTION MISSING %s",
		    names[idx] + 1), Tcl_ObjPrintf("option %s needs a value",
		    names[idx]));
	}
	values[idx] = objv[i + 1];
    }
    return TCL_OK;
}

/* ------------------------------------------------------------------ */
/* Programmers                                                          */
/* ------------------------------------------------------------------ */

/*
 * ProgrammerDict --
 *	A programmer as a dict: name type dsn die.
 */
static Tcl_Obj *
ProgrammerDict(const SimProgrammer *p)
{
    Tcl_Obj *d = Tcl_NewDictObj();
    char dsn[2 * PROTO_DSN + 1] = "";

    if (p->hasBoard) {
	sim_dsn_format(p->dsn, dsn);
    }
    Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("name", -1),
	    Tcl_NewStringObj(p->name, -1));
    Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("type", -1),
	    Tcl_NewStringObj(p->type, -1));
    Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("dsn", -1),
	    Tcl_NewStringObj(dsn, -1));
    Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("die", -1),
	    Tcl_NewStringObj(p->hasBoard ? p->die : "", -1));
    return d;
}

/*
 * ProgrammerObjCmd --
 *	spps::sim::programmer add|remove|list|info.
 */
static int
ProgrammerObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const char *const subs[] = {"add", "info", "list", "remove", NULL};
    enum { ADD, INFO, LIST, REMOVE };
    static const char *const addOpts[] = {"-name", "-type", NULL};
    SimBench *bench;
    SimProgrammer p, *list = NULL;
    SimError err;
    Tcl_Obj *v[2], *result;
    size_t n, i;
    int sub;

    (void) cd;
    if (objc < 2) {
	Tcl_WrongNumArgs(interp, 1, objv, "subcommand ?arg ...?");
	return TCL_ERROR;
    }
    if (Tcl_GetIndexFromObj(interp, objv[1], subs, "subcommand", 0,
	    &sub) != TCL_OK) {
	return TCL_ERROR;
    }
    switch (sub) {
    case ADD:
	if (objc % 2) {
	    Tcl_WrongNumArgs(interp, 2, objv, "?-name NAME? ?-type TYPE?");
	    return TCL_ERROR;
	}
	if (ParsePairs(interp, 2, objc, objv, addOpts, v) != TCL_OK
		|| (bench = GetBench(interp)) == NULL) {
	    return TCL_ERROR;
	}
	if (sim_programmer_add(bench, v[0] ? Tcl_GetString(v[0]) : NULL,
		v[1] ? Tcl_GetString(v[1]) : NULL, &p, &err) != 0) {
	    return SimError_(interp, &err);
	}
	Tcl_SetObjResult(interp, Tcl_NewStringObj(p.name, -1));
	return TCL_OK;
    case REMOVE:
    case INFO:
	if (objc != 3) {
	    Tcl_WrongNumArgs(interp, 2, objv, "NAME");
	    return TCL_ERROR;
	}
	if ((bench = GetBench(interp)) == NULL) {
	    return TCL_ERROR;
	}
	if (sub == REMOVE) {
	    if (sim_programmer_remove(bench, Tcl_GetString(objv[2]), &err) != 0) {
		return SimError_(interp, &err);
	    }
	    return TCL_OK;
	}
	if (sim_programmer_get(bench, Tcl_GetString(objv[2]), &p, &err) != 0) {
	    return SimError_(interp, &err);
	}
	Tcl_SetObjResult(interp, ProgrammerDict(&p));
	return TCL_OK;
    case LIST:
	if (objc != 2) {
	    Tcl_WrongNumArgs(interp, 2, objv, NULL);
	    return TCL_ERROR;
	}
	if ((bench = GetBench(interp)) == NULL) {
	    return TCL_ERROR;
	}
	if (sim_programmer_list(bench, &list, &n, &err) != 0) {
	    return SimError_(interp, &err);
	}
	result = Tcl_NewListObj(0, NULL);
	for (i = 0; i < n; i++) {
	    Tcl_ListObjAppendElement(NULL, result,
		    Tcl_NewStringObj(list[i].name, -1));
	}
	free(list);
	Tcl_SetObjResult(interp, result);
	return TCL_OK;
    }
    return TCL_ERROR;
}

/* ------------------------------------------------------------------ */
/* Boards and devices                                                   */
/* ------------------------------------------------------------------ */

/*
 * DigestObj --
 *	A digest in hex, or empty.
 */
static Tcl_Obj *
DigestObj(const uint8_t *d, int present)
{
    char hex[2 * PROTO_DIGEST + 1];

    if (!present) {
	return Tcl_NewObj();
    }
    proto_hex(d, PROTO_DIGEST, hex);
    return Tcl_NewStringObj(hex, -1);
}

/*
 * DeviceDict --
 *	A device as a dict (doc/spps_sim.n, board info).
 */
static Tcl_Obj *
DeviceDict(const SimDeviceInfo *info)
{
    Tcl_Obj *d = Tcl_NewDictObj();
    char dsn[2 * PROTO_DSN + 1];

#define PUT(k, v) Tcl_DictObjPut(NULL, d, Tcl_NewStringObj((k), -1), (v))
    sim_dsn_format(info->dsn, dsn);
    PUT("dsn", Tcl_NewStringObj(dsn, -1));
    PUT("die", Tcl_NewStringObj(info->die, -1));
    PUT("family", Tcl_NewStringObj(info->family, -1));
    PUT("has_kfp", Tcl_NewBooleanObj(info->hasKfp));
    PUT("programmer", Tcl_NewStringObj(info->programmer, -1));
    PUT("state", Tcl_NewStringObj(info->programmed ? "programmed" : "blank",
	    -1));
    PUT("design_name", Tcl_NewStringObj(info->designName, -1));
    PUT("design_digest", DigestObj(info->designDigest, info->programmed));
    PUT("fabric_digest", DigestObj(info->fabricDigest, info->programmed));
    PUT("content_digest", DigestObj(info->contentDigest, 1));
    PUT("envm_clients", Tcl_NewWideIntObj((Tcl_WideInt) info->nEnvm));
    PUT("keys", Tcl_NewStringObj(info->keyNames, -1));
    PUT("actions", Tcl_NewWideIntObj((Tcl_WideInt) info->actions));
    PUT("coc_count", Tcl_NewWideIntObj((Tcl_WideInt) info->cocs));
    PUT("interrupted", Tcl_NewBooleanObj(info->interrupted));
#undef PUT
    return d;
}

/*
 * BadDsn --
 *	The error for a DSN that is not 1 to 32 hex digits.
 */
static int
BadDsn(Tcl_Interp *interp, Tcl_Obj *value)
{
    return Spps_ErrorObj(interp, Tcl_NewStringObj("OPTION VALUE dsn", -1),
	    Tcl_ObjPrintf("invalid DSN '%s': 1 to 32 hex digits",
		    Tcl_GetString(value)));
}

/*
 * BoardObjCmd --
 *	spps::sim::board insert|pull|info|list.
 */
static int
BoardObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const char *const subs[] = {"info", "insert", "list", "pull", NULL};
    enum { INFO, INSERT, LIST, PULL };
    static const char *const insertOpts[] = {"-programmer", "-die", "-dsn",
	NULL};
    SimBench *bench;
    SimProgrammer *list = NULL;
    SimDeviceInfo info;
    SimError err;
    Tcl_Obj *v[3], *result;
    uint8_t dsn[PROTO_DSN], out[PROTO_DSN];
    char hex[2 * PROTO_DSN + 1];
    size_t n, i;
    int sub;

    (void) cd;
    if (objc < 2) {
	Tcl_WrongNumArgs(interp, 1, objv, "subcommand ?arg ...?");
	return TCL_ERROR;
    }
    if (Tcl_GetIndexFromObj(interp, objv[1], subs, "subcommand", 0,
	    &sub) != TCL_OK) {
	return TCL_ERROR;
    }
    switch (sub) {
    case INSERT:
	if (objc % 2) {
	    Tcl_WrongNumArgs(interp, 2, objv,
		    "?-programmer NAME? ?-die DIE? ?-dsn HEX?");
	    return TCL_ERROR;
	}
	if (ParsePairs(interp, 2, objc, objv, insertOpts, v) != TCL_OK) {
	    return TCL_ERROR;
	}
	if (v[2] != NULL && sim_dsn_parse(Tcl_GetString(v[2]), dsn) != 0) {
	    return BadDsn(interp, v[2]);
	}
	if ((bench = GetBench(interp)) == NULL) {
	    return TCL_ERROR;
	}
	if (sim_board_insert(bench, v[0] ? Tcl_GetString(v[0]) : NULL,
		v[1] ? Tcl_GetString(v[1]) : NULL, v[2] ? dsn : NULL, out, NULL,
		&err) != 0) {
	    return SimError_(interp, &err);
	}
	sim_dsn_format(out, hex);
	Tcl_SetObjResult(interp, Tcl_NewStringObj(hex, -1));
	return TCL_OK;
    case PULL:
	if (objc != 3) {
	    Tcl_WrongNumArgs(interp, 2, objv, "PROGRAMMER");
	    return TCL_ERROR;
	}
	if ((bench = GetBench(interp)) == NULL) {
	    return TCL_ERROR;
	}
	if (sim_board_pull(bench, Tcl_GetString(objv[2]), &err) != 0) {
	    return SimError_(interp, &err);
	}
	return TCL_OK;
    case INFO:
	if (objc != 3) {
	    Tcl_WrongNumArgs(interp, 2, objv, "DSN");
	    return TCL_ERROR;
	}
	if (sim_dsn_parse(Tcl_GetString(objv[2]), dsn) != 0) {
	    return BadDsn(interp, objv[2]);
	}
	if ((bench = GetBench(interp)) == NULL) {
	    return TCL_ERROR;
	}
	if (sim_device_info(bench, dsn, &info, &err) != 0) {
	    return SimError_(interp, &err);
	}
	Tcl_SetObjResult(interp, DeviceDict(&info));
	return TCL_OK;
    case LIST:
	if (objc != 2) {
	    Tcl_WrongNumArgs(interp, 2, objv, NULL);
	    return TCL_ERROR;
	}
	if ((bench = GetBench(interp)) == NULL) {
	    return TCL_ERROR;
	}
	if (sim_programmer_list(bench, &list, &n, &err) != 0) {
	    return SimError_(interp, &err);
	}
	result = Tcl_NewListObj(0, NULL);
	for (i = 0; i < n; i++) {
	    if (list[i].hasBoard) {
		sim_dsn_format(list[i].dsn, hex);
		Tcl_ListObjAppendElement(NULL, result,
			Tcl_NewStringObj(hex, -1));
	    }
	}
	free(list);
	Tcl_SetObjResult(interp, result);
	return TCL_OK;
    }
    return TCL_ERROR;
}

/*
 * DeviceObjCmd --
 *	spps::sim::device list.
 */
static int
DeviceObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const char *const subs[] = {"list", NULL};
    SimBench *bench;
    SimDeviceInfo *list = NULL;
    SimError err;
    Tcl_Obj *result;
    char hex[2 * PROTO_DSN + 1];
    size_t n, i;
    int sub;

    (void) cd;
    if (objc != 2) {
	Tcl_WrongNumArgs(interp, 1, objv, "list");
	return TCL_ERROR;
    }
    if (Tcl_GetIndexFromObj(interp, objv[1], subs, "subcommand", 0,
	    &sub) != TCL_OK || (bench = GetBench(interp)) == NULL) {
	return TCL_ERROR;
    }
    if (sim_device_list(bench, &list, &n, &err) != 0) {
	return SimError_(interp, &err);
    }
    result = Tcl_NewListObj(0, NULL);
    for (i = 0; i < n; i++) {
	sim_dsn_format(list[i].dsn, hex);
	Tcl_ListObjAppendElement(NULL, result, Tcl_NewStringObj(hex, -1));
    }
    free(list);
    Tcl_SetObjResult(interp, result);
    return TCL_OK;
}

/* ------------------------------------------------------------------ */
/* Faults                                                               */
/* ------------------------------------------------------------------ */

/*
 * FaultObjCmd --
 *	spps::sim::fault set|list|clear.
 */
static int
FaultObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const char *const subs[] = {"clear", "list", "set", NULL};
    enum { CLEAR, LIST, SET };
    static const char *const setOpts[] = {"-at", "-programmer", NULL};
    static const char *const kinds[] = {"pull_board", NULL};
    SimBench *bench;
    SimFault f, *list = NULL;
    SimError err;
    Tcl_Obj *v[2], *result;
    size_t n, i;
    int sub, kind;

    (void) cd;
    if (objc < 2) {
	Tcl_WrongNumArgs(interp, 1, objv, "subcommand ?arg ...?");
	return TCL_ERROR;
    }
    if (Tcl_GetIndexFromObj(interp, objv[1], subs, "subcommand", 0,
	    &sub) != TCL_OK) {
	return TCL_ERROR;
    }
    switch (sub) {
    case SET:
	if (objc < 3 || objc % 2 == 0) {
	    Tcl_WrongNumArgs(interp, 2, objv,
		    "pull_board ?-at auth|code|program|coc? ?-programmer NAME?");
	    return TCL_ERROR;
	}
	if (Tcl_GetIndexFromObj(interp, objv[2], kinds, "fault", 0,
		&kind) != TCL_OK
		|| ParsePairs(interp, 3, objc, objv, setOpts, v) != TCL_OK) {
	    return TCL_ERROR;
	}
	memset(&f, 0, sizeof(f));
	strcpy(f.kind, kinds[kind]);
	f.step = v[0] != NULL ? sim_step_parse(Tcl_GetString(v[0]))
		: SIM_STEP_PROGRAM;
	if (f.step == 0) {
	    return Spps_ErrorObj(interp, Tcl_NewStringObj("OPTION VALUE at",
		    -1), Tcl_ObjPrintf("bad step \"%s\": must be auth, code, "
		    "program or coc", Tcl_GetString(v[0])));
	}
	if (v[1] != NULL) {
	    snprintf(f.programmer, sizeof(f.programmer), "%s",
		    Tcl_GetString(v[1]));
	}
	if ((bench = GetBench(interp)) == NULL) {
	    return TCL_ERROR;
	}
	if (sim_fault_set(bench, &f, &err) != 0) {
	    return SimError_(interp, &err);
	}
	return TCL_OK;
    case CLEAR:
    case LIST:
	if (objc != 2) {
	    Tcl_WrongNumArgs(interp, 2, objv, NULL);
	    return TCL_ERROR;
	}
	if ((bench = GetBench(interp)) == NULL) {
	    return TCL_ERROR;
	}
	if (sub == CLEAR) {
	    return sim_fault_clear(bench, &err) == 0 ? TCL_OK
		    : SimError_(interp, &err);
	}
	if (sim_fault_list(bench, &list, &n, &err) != 0) {
	    return SimError_(interp, &err);
	}
	result = Tcl_NewListObj(0, NULL);
	for (i = 0; i < n; i++) {
	    Tcl_Obj *d = Tcl_NewDictObj();

	    Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("fault", -1),
		    Tcl_NewStringObj(list[i].kind, -1));
	    Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("at", -1),
		    Tcl_NewStringObj(sim_step_name(list[i].step), -1));
	    Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("programmer", -1),
		    Tcl_NewStringObj(list[i].programmer, -1));
	    Tcl_ListObjAppendElement(NULL, result, d);
	}
	free(list);
	Tcl_SetObjResult(interp, result);
	return TCL_OK;
    }
    return TCL_ERROR;
}

/*
 * SppsSim_Init --
 *	The spps::sim commands (an area of package spps).
 */
int
SppsSim_Init(Tcl_Interp *interp)
{
    if (Tcl_CreateNamespace(interp, "::spps::sim", NULL, NULL) == NULL
	    && Tcl_FindNamespace(interp, "::spps::sim", NULL, 0) == NULL) {
	return TCL_ERROR;
    }
    Tcl_CreateObjCommand(interp, "::spps::sim::programmer", ProgrammerObjCmd,
	    NULL, NULL);
    Tcl_CreateObjCommand(interp, "::spps::sim::board", BoardObjCmd, NULL,
	    NULL);
    Tcl_CreateObjCommand(interp, "::spps::sim::device", DeviceObjCmd, NULL,
	    NULL);
    Tcl_CreateObjCommand(interp, "::spps::sim::fault", FaultObjCmd, NULL,
	    NULL);
    return TCL_OK;
}
