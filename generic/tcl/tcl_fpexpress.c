/*
 * tcl_fpexpress.c --
 *
 *	The FlashPro Express command set (doc/fpexpress.n): the session, the
 *	HSM parameters, job requests, job projects, programming actions'
 *	choice, ticket administration, the log and script exports, the mode.
 *	Running actions, job status, the end of a job and the programmer
 *	commands are in tcl_fpexpress_run.c.
 *
 *	Messages and log lines follow Microchip's tool where it is known
 *	(the command reference and the TU0823 tutorial's figures); where it
 *	is not, they say what happened and where.
 */

#include "tcl_fpexpress.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "roles/role_uhsm.h"
#include "sim/sim_factory.h"

#define SESSION_KEY "spps::fpexpress"
#define SETTINGS_FILE "fpexpress.settings"
#define SETTINGS_MAC_LABEL "fpexpress settings v1"
#define PROJECT_MAC_LABEL "fpexpress project v1"
#define FTP_KEY_LABEL "fpexpress ftp password v1"
#define MAX_REQUEST (64u * 1024 * 1024)
#define MAX_JOB PROTO_MAX_BODY

/* ------------------------------------------------------------------ */
/* Session                                                              */
/* ------------------------------------------------------------------ */

/*
 * CloseProject --
 *	Closes the session's project (not saved).
 */
static void
CloseProject(FpeSession *s)
{
    if (s->project != NULL) {
	Tcl_Free(s->project->path);
	fpe_project_free(&s->project->p);
	proto_job_free(&s->project->job);
	Tcl_Free((char *) s->project);
	s->project = NULL;
    }
}

/*
 * CloseHsm --
 *	Closes the session's M-HSM and its HSM.
 */
static void
CloseHsm(FpeSession *s)
{
    role_mhsm_close(s->mhsm);
    s->mhsm = NULL;
    role_hsm_close(s->hsm);
    s->hsm = NULL;
}

/*
 * SessionDelete --
 *	Frees a session when its interpreter goes.
 */
static void
SessionDelete(ClientData clientData, Tcl_Interp *interp)
{
    FpeSession *s = clientData;

    (void) interp;
    CloseProject(s);
    CloseHsm(s);
    sim_bench_close(s->bench);
    fpe_settings_free(&s->settings);
    free(s->prg);
    Tcl_DecrRefCount(s->history);
    Tcl_DecrRefCount(s->prgConfig);
    Tcl_Free((char *) s);
}

/*
 * FpeGetSession --
 *	The interpreter's session, made on first use.
 */
FpeSession *
FpeGetSession(Tcl_Interp *interp)
{
    FpeSession *s = Tcl_GetAssocData(interp, SESSION_KEY, NULL);

    if (s == NULL) {
	s = (FpeSession *) Tcl_Alloc(sizeof(*s));
	memset(s, 0, sizeof(*s));
	s->history = Tcl_NewListObj(0, NULL);
	Tcl_IncrRefCount(s->history);
	s->prgConfig = Tcl_NewDictObj();
	Tcl_IncrRefCount(s->prgConfig);
	Tcl_SetAssocData(interp, SESSION_KEY, SessionDelete, s);
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

/* A malloc'ed copy (the proto structures own malloc'ed strings). */
static char *
Dup(const char *str)
{
    size_t n = strlen(str) + 1;
    char *d = malloc(n);

    if (d != NULL) {
	memcpy(d, str, n);
    }
    return d;
}

/*
 * FpeNormalizePath --
 *	An absolute, normalised path, relative to Tcl's current directory.
 */
char *
FpeNormalizePath(Tcl_Interp *interp, const char *path)
{
    Tcl_Obj *p = Tcl_NewStringObj(path, -1), *n;
    const char *str;
    char *copy;

    (void) interp;
    Tcl_IncrRefCount(p);
    n = Tcl_FSGetNormalizedPath(NULL, p);
    str = n != NULL ? Tcl_GetString(n) : path;
    copy = Tcl_Alloc((unsigned) strlen(str) + 1);
    strcpy(copy, str);
    Tcl_DecrRefCount(p);
    return copy;
}

/*
 * FpeReadFile --
 *	Reads an input file named by an option (tcl_fpexpress.h).
 */
int
FpeReadFile(Tcl_Interp *interp, const char *opt, const char *path,
	size_t maxLen, uint8_t **data, size_t *len)
{
    PlatError pe;

    if (!plat_file_exists(path) || plat_is_dir(path)) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE NOTFOUND {%s}", path),
		Tcl_ObjPrintf("Parameter '%s' : the file '%s' does not exist.",
			opt, path));
    }
    if (plat_read_file(path, maxLen, data, len, &pe) != 0) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE IO {%s}", path),
		Tcl_NewStringObj(pe.msg, -1));
    }
    return TCL_OK;
}

/*
 * FpeWriteFile --
 *	Writes a file atomically and durably.
 */
int
FpeWriteFile(Tcl_Interp *interp, const char *path, const uint8_t *data,
	size_t len, int mode)
{
    PlatError pe;

    if (plat_write_file_durable(path, data, len, mode, &pe) != 0) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE IO {%s}", path),
		Tcl_NewStringObj(pe.msg, -1));
    }
    return TCL_OK;
}

/*
 * FpeCheckWritable --
 *	Checks the folder of an output file exists, before anything is
 *	done that the file would report.
 */
int
FpeCheckWritable(Tcl_Interp *interp, const char *opt, const char *path)
{
    Tcl_Obj *p = Tcl_NewStringObj(path, -1), *parts, *dir;
    int n, ok;

    Tcl_IncrRefCount(p);
    parts = Tcl_FSSplitPath(p, NULL);
    Tcl_IncrRefCount(parts);
    Tcl_ListObjLength(NULL, parts, &n);
    dir = n > 1 ? Tcl_FSJoinPath(parts, n - 1) : Tcl_NewStringObj(".", -1);
    Tcl_IncrRefCount(dir);
    ok = plat_is_dir(Tcl_GetString(dir));
    if (!ok) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE NOTFOUND {%s}",
		Tcl_GetString(dir)), Tcl_ObjPrintf("Parameter '%s' : the folder "
		"'%s' does not exist.", opt, Tcl_GetString(dir)));
    }
    Tcl_DecrRefCount(dir);
    Tcl_DecrRefCount(parts);
    Tcl_DecrRefCount(p);
    return ok ? TCL_OK : TCL_ERROR;
}

/*
 * FpeMhsmError --
 *	A refusal of the M-HSM as a Tcl error with its condition.
 */
int
FpeMhsmError(Tcl_Interp *interp, const char *area, int fail, const char *detail,
	const ProtoError *err)
{
    Tcl_Obj *code = Tcl_ObjPrintf("%s %s", area, role_mhsm_fail_name(fail));

    if (detail != NULL) {
	Tcl_ListObjAppendElement(NULL, code, Tcl_NewStringObj(detail, -1));
    }
    return Spps_ErrorObj(interp, code, Tcl_NewStringObj(err->msg, -1));
}

/*
 * FpeRequireProject --
 *	The tool's error when no job project is open.
 */
int
FpeRequireProject(Tcl_Interp *interp, FpeSession *s, const char *cmd)
{
    if (s->project != NULL) {
	return TCL_OK;
    }
    return Spps_Error(interp, "PROJECT NONE", "Fpeng error: Chain manager not "
	    "set: %s needs an open job project (open_project or "
	    "create_job_project).", cmd);
}

/*
 * FpeRequireBench --
 *	Opens the session's bench.
 */
int
FpeRequireBench(Tcl_Interp *interp, FpeSession *s)
{
    SimError err;

    if (s->bench == NULL && sim_bench_open(&s->bench, &err) != 0) {
	return Spps_Error(interp, "BENCH FAIL", "%s", err.e.msg);
    }
    return TCL_OK;
}

/*
 * FpeIdHex --
 *	A ticket id as 40 hex digits.
 */
void
FpeIdHex(const uint8_t id[PROTO_TICKET_ID], char out[2 * PROTO_TICKET_ID + 1])
{
    proto_hex(id, PROTO_TICKET_ID, out);
}

/*
 * FpeLocalTime --
 *	Local time as text (the tools' logs and script headers use it).
 */
void
FpeLocalTime(time_t t, const char *fmt, char *buf, size_t len)
{
    struct tm tmv;

#ifdef _WIN32
    localtime_s(&tmv, &t);
#else
    localtime_r(&t, &tmv);
#endif
    strftime(buf, len, fmt, &tmv);
}

/*
 * FpeCanonDie --
 *	A die's canonical name, to compare a job's device with a board's.
 */
void
FpeCanonDie(const char *die, char out[32])
{
    if (sim_die_canon(die, out) != 0) {
	snprintf(out, 32, "%s", die);
    }
}

/*
 * FpeTicketForAction --
 *	The job ticket of a device and action.
 */
int
FpeTicketForAction(const ProtoJob *job, const char *device, const char *action)
{
    size_t i;

    for (i = 0; i < job->nTickets; i++) {
	if (strcmp(job->tickets[i].device, device) == 0
		&& strcmp(job->tickets[i].action, action) == 0) {
	    return (int) i;
	}
    }
    return -1;
}

/*
 * FpeHistory --
 *	Records a command for export_script (an FTP password masked: it is
 *	never written in clear).
 */
void
FpeHistory(FpeSession *s, int objc, Tcl_Obj *const objv[])
{
    Tcl_Obj *cmd = Tcl_NewListObj(0, NULL);
    int i;

    for (i = 0; i < objc; i++) {
	/* A password never reaches an exported script. */
	if (i > 0 && strcmp(Tcl_GetString(objv[i - 1]), "-ftp_password") == 0) {
	    Tcl_ListObjAppendElement(NULL, cmd, Tcl_NewStringObj("********",
		    -1));
	} else {
	    Tcl_ListObjAppendElement(NULL, cmd, objv[i]);
	}
    }

    if (Tcl_IsShared(s->history)) {
	Tcl_Obj *copy = Tcl_DuplicateObj(s->history);

	Tcl_DecrRefCount(s->history);
	s->history = copy;
	Tcl_IncrRefCount(copy);
    }
    Tcl_ListObjAppendElement(NULL, s->history, cmd);
}

/* ------------------------------------------------------------------ */
/* Settings                                                             */
/* ------------------------------------------------------------------ */

/*
 * SettingsPath --
 *	$SPPS_HOME/fpexpress.settings.
 */
static char *
SettingsPath(void)
{
    char *home = plat_spps_home(), *path;

    if (home == NULL) {
	return NULL;
    }
    path = plat_join(home, SETTINGS_FILE);
    free(home);
    return path;
}

/* Opens the HSM of a server name (kept in the session). */
static int
OpenServer(Tcl_Interp *interp, FpeSession *s, const char *server)
{
    ProtoError err;

    if (s->hsm != NULL && strcmp(s->hsm->serverName, server) == 0) {
	return TCL_OK;
    }
    CloseHsm(s);
    if (role_hsm_open(server, &s->hsm, &err) != 0) {
	return Spps_Error(interp, "HSMPARAMS IO", "Cannot get HSM '%s': %s",
		server, err.msg);
    }
    return TCL_OK;
}

/* A key of the HSM for one use (cleanse it after). */
static int
HsmKey(Tcl_Interp *interp, RoleHsm *hsm, const char *label, uint8_t key[32])
{
    ProtoError err;

    if (role_mac_key(hsm, label, key, &err) != 0) {
	return Spps_Error(interp, "HSMPARAMS IO", "%s", err.msg);
    }
    return TCL_OK;
}

/*
 * LoadSettings --
 *	Reads $SPPS_HOME/fpexpress.settings once per session.  A missing
 *	file is no settings; a damaged one is an error naming it.
 */
static int
LoadSettings(Tcl_Interp *interp, FpeSession *s)
{
    char *path, *server = NULL, *mode = NULL;
    uint8_t *data = NULL, key[32];
    size_t len = 0;
    ProtoError err;
    PlatError pe;
    int rc = TCL_OK;

    if (s->settingsLoaded) {
	return TCL_OK;
    }
    if ((path = SettingsPath()) == NULL) {
	return Spps_Error(interp, "HSMPARAMS IO", "cannot find the spps home "
		"directory (set SPPS_HOME)");
    }
    if (!plat_file_exists(path)) {
	s->settingsLoaded = 1;
	free(path);
	return TCL_OK;
    }
    if (plat_read_file(path, FPE_MAX_SETTINGS, &data, &len, &pe) != 0) {
	rc = Spps_ErrorObj(interp, Tcl_ObjPrintf("HSMPARAMS IO {%s}", path),
		Tcl_NewStringObj(pe.msg, -1));
	goto done;
    }
    if (fpe_settings_server(data, len, path, &server, &mode, &err) != 0) {
	goto corrupt;
    }
    if (server == NULL) {
	s->settings.mode = mode;
	mode = NULL;
    } else {
	if (OpenServer(interp, s, server) != TCL_OK
		|| HsmKey(interp, s->hsm, SETTINGS_MAC_LABEL, key) != TCL_OK) {
	    rc = TCL_ERROR;
	    goto done;
	}
	rc = fpe_settings_read(data, len, path, key, &s->settings, &err);
	OPENSSL_cleanse(key, sizeof(key));
	if (rc != 0) {
	    rc = TCL_OK;
	    goto corrupt;
	}
	s->hasSettings = 1;
    }
    s->settingsLoaded = 1;
    goto done;
  corrupt:
    rc = Spps_ErrorObj(interp, Tcl_ObjPrintf("HSMPARAMS CORRUPT {%s}", path),
	    Tcl_ObjPrintf("the FlashPro Express settings file is damaged or was "
		    "altered (%s): run set_hsm_params again", err.msg));
  done:
    free(server);
    free(mode);
    free(data);
    free(path);
    return rc;
}

/*
 * SaveSettings --
 *	Writes the session's settings (MAC under a key of the server's
 *	HSM).
 */
static int
SaveSettings(Tcl_Interp *interp, FpeSession *s)
{
    uint8_t key[32], *image = NULL;
    size_t len = 0;
    ProtoError err;
    char *path;
    int rc;

    if ((path = SettingsPath()) == NULL) {
	return Spps_Error(interp, "HSMPARAMS IO", "cannot find the spps home "
		"directory (set SPPS_HOME)");
    }
    if (s->hasSettings && HsmKey(interp, s->hsm, SETTINGS_MAC_LABEL,
	    key) != TCL_OK) {
	free(path);
	return TCL_ERROR;
    }
    rc = fpe_settings_write(&s->settings, s->hasSettings ? key : NULL, &image,
	    &len, &err);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != 0) {
	rc = Spps_Error(interp, "HSMPARAMS IO", "%s", err.msg);
    } else {
	rc = FpeWriteFile(interp, path, image, len, 0600);
    }
    free(image);
    free(path);
    return rc;
}

/*
 * FpeRequireMhsm --
 *	Opens the M-HSM the settings name (tcl_fpexpress.h).
 */
int
FpeRequireMhsm(Tcl_Interp *interp, FpeSession *s)
{
    ProtoError err;
    int fail;

    if (LoadSettings(interp, s) != TCL_OK) {
	return TCL_ERROR;
    }
    if (!s->hasSettings) {
	return Spps_Error(interp, "HSMPARAMS NONE", "Cannot get HSM. The HSM "
		"parameters are not set: run set_hsm_params first.");
    }
    if (s->mhsm != NULL) {
	return TCL_OK;
    }
    if (OpenServer(interp, s, s->settings.server) != TCL_OK) {
	return TCL_ERROR;
    }
    if ((fail = role_mhsm_open(s->hsm, s->settings.mhsmUuid[0] != '\0'
	    ? s->settings.mhsmUuid : NULL, &s->mhsm, &err)) != 0) {
	return FpeMhsmError(interp, "MHSM", fail, NULL, &err);
    }
    return TCL_OK;
}

/* The vendor for provisioning: the simulated factory. */
static int
VendorCertify(void *ctx, ProtoCert *cert, ProtoError *err)
{
    return sim_factory_certify(ctx, cert, err);
}

/*
 * VendorSealDfk --
 *	The factory's DFK-DB key, sealed to a new M-HSM.
 */
static int
VendorSealDfk(void *ctx, const ProtoCert *cert, uint8_t **sealed, size_t *len,
	ProtoError *err)
{
    return sim_factory_seal_dfk_key(ctx, cert, sealed, len, err);
}

/*
 * Provision --
 *	Makes the HSM an M-HSM (or finds it one) of this UUID and kind, and
 *	logs it when made now.
 */
static int
Provision(Tcl_Interp *interp, FpeSession *s, const char *uuid, int kind)
{
    RoleMhsmVendor vendor;
    SimFactory *factory = NULL;
    ProtoError err;
    int fail, created = 0;

    if (sim_factory_open(&factory, &err) != 0
	    || sim_factory_root(factory, vendor.root, &err) != 0) {
	sim_factory_close(factory);
	return Spps_Error(interp, "MHSM FAIL", "cannot reach the silicon "
		"vendor to provision HSM '%s': %s", s->hsm->serverName, err.msg);
    }
    vendor.certify = VendorCertify;
    vendor.sealDfkKey = VendorSealDfk;
    vendor.ctx = factory;
    fail = role_mhsm_provision(s->hsm, uuid, kind, &vendor, &created, &err);
    sim_factory_close(factory);
    if (fail != 0) {
	return FpeMhsmError(interp, "MHSM", fail, NULL, &err);
    }
    if (created) {
	char canon[41];

	proto_uuid_canon(uuid, canon, NULL);
	Spps_Log(interp, "HSM '%s' set up as M-HSM %s%s in '%s': identity and "
		"sealing keys certified by the vendor root, DFK-DB key "
		"delivered by the factory.", s->hsm->serverName, canon,
		kind == ROLE_MHSM_KIND_UHSM_FUNCTION
		? " (the M-HSM function of its U-HSM)" : "", s->hsm->dir);
    }
    return TCL_OK;
}

/*
 * set_hsm_params (FlashPro Express) --
 *	Saves the M-HSM parameters (per user, in SPPS_HOME) and makes sure
 *	the HSM is the M-HSM they say, provisioning it on first use.
 */
static int
SetHsmParamsObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"hsm_server_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"m_hsm_uuid", SPPS_OPT_STRING, 0, NULL, NULL},
	{"hsm_type_u", SPPS_OPT_BOOL, 0, NULL, NULL},
	{"ftp_username", SPPS_OPT_STRING, 0, NULL, NULL},
	{"ftp_password", SPPS_OPT_STRING, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[5];
    FpeSettings ns;
    RoleUhsm *u = NULL;
    ProtoError err;
    ProtoBuf aad;
    const char *server;
    char uuid[41], have[41];
    uint8_t key[32];
    int typeU, kind, isU, provisioned, hadKind = 0, rc = TCL_ERROR;

    (void) cd;
    memset(&ns, 0, sizeof(ns));
    proto_buf_init(&aad);
    if (FPE_PARSE(interp, "set_hsm_params -hsm_server_name hsm_server "
	    "-hsm_type_u {TRUE|FALSE} -m_hsm_uuid m_uuid -ftp_username "
	    "{ftp_username} -ftp_password {ftp_password}", opts, objc, objv,
	    v) != TCL_OK) {
	return TCL_ERROR;
    }
    server = Tcl_GetString(v[0]);
    if (server[0] == '\0') {
	Spps_Error(interp, "OPTION VALUE hsm_server_name", "HSM server name "
		"cannot be empty.");
	goto done;
    }
    if (!role_server_name_valid(server)) {
	Spps_Error(interp, "OPTION VALUE hsm_server_name", "Could not get "
		"server information. Please check server address and "
		"connection and try again. ('%.80s' is not a host name or IP "
		"address: 1 to 64 letters, digits, '.', '-' or '_')", server);
	goto done;
    }
    if (v[3] != NULL && v[4] == NULL) {
	Spps_Error(interp, "OPTION MISSING ftp_password", "FTP login password "
		"must be specified along with the user name.");
	goto done;
    }
    if (v[4] != NULL && v[3] == NULL) {
	Spps_Error(interp, "OPTION MISSING ftp_username", "FTP login user name "
		"must be specified along with the password.");
	goto done;
    }
    uuid[0] = '\0';
    if (v[1] != NULL && proto_uuid_canon(Tcl_GetString(v[1]), uuid,
	    &err) != 0) {
	Spps_Error(interp, "OPTION VALUE m_hsm_uuid", "Parameter 'm_hsm_uuid' "
		"has illegal value: %s", err.msg);
	goto done;
    }
    if (v[2] != NULL) {
	Spps_Log(interp, "Warning:Deprecated 'hsm_type_u' parameter is used.");
    }
    if (LoadSettings(interp, s) != TCL_OK) {
	/* Damaged settings are replaced by the new ones. */
	Tcl_ResetResult(interp);
	fpe_settings_free(&s->settings);
	s->hasSettings = 0;
	s->settingsLoaded = 1;
    }
    typeU = v[2] != NULL ? Tcl_GetBooleanFromObj(NULL, v[2], &typeU) == TCL_OK
	    && typeU : (s->hasSettings && strcmp(s->settings.server, server) == 0
	    ? s->settings.hsmTypeU : 0);
    kind = typeU ? ROLE_MHSM_KIND_UHSM_FUNCTION : ROLE_MHSM_KIND_STANDALONE;

    /* The HSM: a U-HSM for its M-HSM function, else a Manufacturer HSM. */
    if (OpenServer(interp, s, server) != TCL_OK) {
	goto done;
    }
    if ((isU = role_uhsm_open(s->hsm, &u, &err)) < 0) {
	Spps_Error(interp, "MHSM CORRUPT", "HSM '%s': %s", server, err.msg);
	goto done;
    }
    if (isU) {
	snprintf(have, sizeof(have), "%s", role_uhsm_uuid(u));
	role_uhsm_close(u);
	if (!typeU) {
	    Spps_Error(interp, "MHSM IS_UHSM", "HSM '%s' is U-HSM %s: its M-HSM "
		    "function is used with -hsm_type_u TRUE", server, have);
	    goto done;
	}
	if (uuid[0] == '\0') {
	    memcpy(uuid, have, sizeof(have));
	} else if (strcmp(uuid, have) != 0) {
	    Spps_Error(interp, "MHSM UUID", "HSM '%s' is U-HSM %s: the UUID of "
		    "its M-HSM function is %s, not %s", server, have, have, uuid);
	    goto done;
	}
    } else if (typeU) {
	Spps_Error(interp, "MHSM NOT_UHSM", "HSM '%s' is not a U-HSM: "
		"-hsm_type_u TRUE uses the M-HSM function of a U-HSM (set it up "
		"with Job Manager first)", server);
	goto done;
    }
    if ((provisioned = role_mhsm_provisioned(s->hsm, have, &hadKind,
	    &err)) < 0) {
	Spps_Error(interp, "MHSM CORRUPT", "HSM '%s': %s", server, err.msg);
	goto done;
    }
    if (uuid[0] == '\0') {
	if (!provisioned) {
	    Spps_Error(interp, "OPTION MISSING m_hsm_uuid", "Parameter "
		    "'m_hsm_uuid' is required to set up HSM '%s' the first "
		    "time.", server);
	    goto done;
	}
	memcpy(uuid, have, sizeof(have));
    }
    if (Provision(interp, s, uuid, kind) != TCL_OK) {
	goto done;
    }
    role_mhsm_close(s->mhsm);
    s->mhsm = NULL;

    /* The new settings: the FTP password sealed under a key of the HSM. */
    if ((ns.server = Dup(server)) == NULL) {
	Spps_Error(interp, "HSMPARAMS IO", "out of memory");
	goto done;
    }
    memcpy(ns.mhsmUuid, uuid, sizeof(uuid));
    ns.hsmTypeU = typeU;
    ns.updated = (uint64_t) time(NULL);
    ns.mode = s->settings.mode != NULL ? Dup(s->settings.mode) : NULL;
    if (v[3] != NULL) {
	const char *pw = Tcl_GetString(v[4]);
	int sealed;

	ns.ftpUser = Dup(Tcl_GetString(v[3]));
	if (ns.ftpUser == NULL || fpe_settings_aad(&ns, &aad) != 0
		|| HsmKey(interp, s->hsm, FTP_KEY_LABEL, key) != TCL_OK) {
	    Spps_Error(interp, "HSMPARAMS IO", "cannot seal the FTP password");
	    goto done;
	}
	sealed = proto_gcm_encrypt(key, aad.data, aad.len,
		(const uint8_t *) pw, strlen(pw), &ns.ftpSealed,
		&ns.ftpSealedLen, &err);
	OPENSSL_cleanse(key, sizeof(key));
	if (sealed != 0) {
	    Spps_Error(interp, "HSMPARAMS IO", "cannot seal the FTP password: %s",
		    err.msg);
	    goto done;
	}
    }
    fpe_settings_free(&s->settings);
    s->settings = ns;
    memset(&ns, 0, sizeof(ns));
    s->hasSettings = 1;
    s->settingsLoaded = 1;
    if (SaveSettings(interp, s) != TCL_OK) {
	goto done;
    }
    Spps_Log(interp, "HSM parameters saved: server '%s', M-HSM %s%s.", server,
	    uuid, typeU ? " (M-HSM function of the U-HSM)" : "");
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "set_hsm_params");
    Tcl_ResetResult(interp);
    rc = TCL_OK;
  done:
    fpe_settings_free(&ns);
    proto_buf_free(&aad);
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Job request                                                          */
/* ------------------------------------------------------------------ */

/*
 * LogTicketSpec --
 *	A ticket of a served request, in the log.
 */
static void
LogTicketSpec(Tcl_Interp *interp, const uint8_t *id, const char *name,
	const char *device, const char *action, int64_t max)
{
    char hex[2 * PROTO_TICKET_ID + 1];

    FPE_BLANK(interp);
    if (id != NULL) {
	FpeIdHex(id, hex);
	Spps_Log(interp, "Ticket ID: %s", hex);
    }
    Spps_Log(interp, "Ticket Name: %s", name);
    Spps_Log(interp, "Device Name: %s", device);
    Spps_Log(interp, "Action: %s", action);
    if (max == PROTO_UNLIMITED) {
	Spps_Log(interp, "Maximum number of devices: unlimited");
    } else {
	Spps_Log(interp, "Maximum number of devices: %lld", (long long) max);
    }
}

/*
 * process_job_request --
 *	The M-HSM serves a job request: ticket ids and binding in a signed
 *	reply, the request recorded so that it is never served twice.
 */
static int
ProcessJobRequestObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"request_file", SPPS_OPT_STRING, 1, NULL, NULL},
	{"reply_file", SPPS_OPT_STRING, 1, NULL, NULL},
	{"overwrite_reply", SPPS_OPT_BOOL, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[3];
    char *reqPath = NULL, *repPath = NULL, what[1100];
    uint8_t *req = NULL, *rep = NULL;
    size_t reqLen = 0, repLen = 0, i;
    ProtoRequest request;
    ProtoReply reply;
    ProtoError err;
    int overwrite = 0, fail, rc = TCL_ERROR;

    (void) cd;
    memset(&request, 0, sizeof(request));
    memset(&reply, 0, sizeof(reply));
    if (FPE_PARSE(interp, "process_job_request -request_file \"job request "
	    "file\" \\ -reply_file \"job reply file\" \\ [-overwrite_reply "
	    "\"TRUE | FALSE\"]", opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (v[2] != NULL) {
	Tcl_GetBooleanFromObj(NULL, v[2], &overwrite);
    }
    reqPath = FpeNormalizePath(interp, Tcl_GetString(v[0]));
    repPath = FpeNormalizePath(interp, Tcl_GetString(v[1]));
    if (FpeReadFile(interp, "request_file", reqPath, MAX_REQUEST, &req,
	    &reqLen) != TCL_OK
	    || FpeCheckWritable(interp, "reply_file", repPath) != TCL_OK) {
	goto done;
    }
    if (plat_file_exists(repPath)) {
	if (!overwrite) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE EXISTS {%s}", repPath),
		    Tcl_ObjPrintf("Parameter 'reply_file' : the file '%s' "
			    "already exists. Set -overwrite_reply to TRUE to "
			    "replace it.", repPath));
	    goto done;
	}
	if (plat_is_dir(repPath)) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE EXISTS {%s}", repPath),
		    Tcl_ObjPrintf("Parameter 'reply_file' : '%s' is a folder.",
			    repPath));
	    goto done;
	}
    }
    if (FpeRequireMhsm(interp, s) != TCL_OK) {
	goto done;
    }
    snprintf(what, sizeof(what), "job request file '%s'", reqPath);
    if ((fail = role_mhsm_serve_request(s->mhsm, req, reqLen, what, &rep,
	    &repLen, &request, &reply, &err)) != 0) {
	FpeMhsmError(interp, "REQUEST", fail, NULL, &err);
	goto done;
    }
    if (plat_file_exists(repPath)) {
	Spps_Log(interp, "File/Folder '%s' will be overwritten.", repPath);
    }
    if (FpeWriteFile(interp, repPath, rep, repLen, 0644) != TCL_OK) {
	goto done;
    }
    FPE_BLANK(interp);
    Spps_Log(interp, "Serving job request for job '%s', HSM task '%s', from "
	    "U-HSM %s ...", request.jobName, request.taskName, request.uhsmUuid);
    for (i = 0; i < reply.nTickets && i < request.nTickets; i++) {
	LogTicketSpec(interp, reply.tickets[i].id, request.tickets[i].name,
		request.tickets[i].device, request.tickets[i].action,
		request.tickets[i].maxDevices);
    }
    FPE_BLANK(interp);
    Spps_Log(interp, "Job tickets bound to M-HSM %s ('%s').", reply.mhsmUuid,
	    s->hsm->serverName);
    Spps_Log(interp, "Successfully exported job reply file: '%s'", repPath);
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "process_job_request");
    Tcl_ResetResult(interp);
    rc = TCL_OK;
  done:
    proto_request_free(&request);
    proto_reply_free(&reply);
    free(req);
    free(rep);
    if (reqPath != NULL) {
	Tcl_Free(reqPath);
	Tcl_Free(repPath);
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Job projects                                                         */
/* ------------------------------------------------------------------ */

/*
 * FpeSaveProject --
 *	Writes the open project (tcl_fpexpress.h).
 */
int
FpeSaveProject(Tcl_Interp *interp, FpeSession *s)
{
    FpeOpenProject *op = s->project;
    uint8_t key[32], *image = NULL;
    size_t len = 0;
    ProtoError err;
    int rc;

    if (OpenServer(interp, s, op->p.server) != TCL_OK
	    || HsmKey(interp, s->hsm, PROJECT_MAC_LABEL, key) != TCL_OK) {
	return TCL_ERROR;
    }
    op->p.saved = (uint64_t) time(NULL);
    rc = fpe_project_write(&op->p, key, &image, &len, &err);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != 0) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("PROJECT IO {%s}", op->path),
		Tcl_NewStringObj(err.msg, -1));
    }
    rc = FpeWriteFile(interp, op->path, image, len, 0600);
    free(image);
    if (rc == TCL_OK) {
	op->dirty = 0;
    }
    return rc;
}

/* The die of the job's first device (canonical), for the bench. */
static void
JobDie(const ProtoJob *job, char die[32])
{
    FpeCanonDie(job->nDevices > 0 ? job->devices[0].die : "M2S090", die);
}

/*
 * DefaultActions --
 *	A device's default action: PROGRAM if it has a PROGRAM ticket, else
 *	its first ticket's action, else DEVICE_INFO.
 */
static int
DefaultActions(FpeProject *p, const ProtoJob *job)
{
    size_t i;

    if (job->nDevices == 0) {
	return 0;
    }
    if ((p->actions = calloc(job->nDevices, sizeof(*p->actions))) == NULL) {
	return -1;
    }
    for (i = 0; i < job->nDevices; i++) {
	const char *dev = job->devices[i].name, *action = "DEVICE_INFO";
	size_t t;

	for (t = 0; t < job->nTickets; t++) {
	    if (strcmp(job->tickets[t].device, dev) == 0) {
		action = job->tickets[t].action;
		if (strcmp(action, "PROGRAM") == 0) {
		    break;
		}
	    }
	}
	if (FpeTicketForAction(job, dev, "PROGRAM") >= 0) {
	    action = "PROGRAM";
	}
	p->nActions = i + 1;
	p->actions[i].enabled = 1;
	if ((p->actions[i].device = Dup(dev)) == NULL
		|| (p->actions[i].action = Dup(action)) == NULL) {
	    return -1;
	}
    }
    return 0;
}

/* The file name without folders and extension ("MyProgJob"). */
static Tcl_Obj *
RootName(const char *path)
{
    Tcl_Obj *p = Tcl_NewStringObj(path, -1), *tail, *parts;
    const char *t, *dot;
    int n;

    Tcl_IncrRefCount(p);
    parts = Tcl_FSSplitPath(p, &n);
    Tcl_IncrRefCount(parts);
    Tcl_ListObjIndex(NULL, parts, n - 1, &tail);
    t = Tcl_GetString(tail);
    dot = strrchr(t, '.');
    tail = Tcl_NewStringObj(t, dot != NULL && dot != t ? (int) (dot - t) : -1);
    Tcl_DecrRefCount(parts);
    Tcl_DecrRefCount(p);
    return tail;
}

/*
 * LogJobLoaded --
 *	What create_job_project did with the job's tickets: loaded, or
 *	shared with another project of the job.
 */
static void
LogJobLoaded(Tcl_Interp *interp, FpeSession *s, const ProtoJob *job,
	size_t shared)
{
    Spps_Log(interp, "Job '%s' (HSM task '%s', from U-HSM %s): %lu ticket%s "
	    "loaded into M-HSM %s ('%s')%s.", job->jobName, job->taskName,
	    job->uhsmUuid, (unsigned long) job->nTickets,
	    job->nTickets == 1 ? "" : "s", role_mhsm_uuid(s->mhsm),
	    s->hsm->serverName, shared == 0 ? ""
	    : shared == job->nTickets
	    ? "; the M-HSM holds them already: their counters are shared, "
	      "no code is added"
	    : "; some were held already: their counters are shared");
}

/*
 * create_job_project --
 *	Loads the job's tickets into the M-HSM and makes the job project
 *	folder <location>/<job file name>/ with <name>.pro; the project is
 *	then open, its programmers connected.
 */
static int
CreateJobProjectObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"job_project_location", SPPS_OPT_STRING, 1, NULL, NULL},
	{"job_file", SPPS_OPT_STRING, 1, NULL, NULL},
	{"overwrite", SPPS_OPT_BOOL, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[3], *name = NULL, *dirObj = NULL, *proObj = NULL;
    char *jobPath = NULL, *loc = NULL, what[1100], die[32];
    const char *dir, *pro;
    uint8_t *image = NULL;
    size_t len = 0, shared = 0;
    FpeOpenProject *op = NULL;
    ProtoError err;
    PlatError pe;
    ProtoJob job;
    int overwrite = 0, fail, existed, rc = TCL_ERROR;

    (void) cd;
    memset(&job, 0, sizeof(job));
    if (FPE_PARSE(interp, "create_job_project -job_project_location {job "
	    "project location} -job_file {path and name of job file} "
	    "-overwrite value", opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (v[2] != NULL) {
	Tcl_GetBooleanFromObj(NULL, v[2], &overwrite);
    }
    jobPath = FpeNormalizePath(interp, Tcl_GetString(v[1]));
    loc = FpeNormalizePath(interp, Tcl_GetString(v[0]));
    if (!plat_is_dir(loc)) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE NOTFOUND {%s}", loc),
		Tcl_ObjPrintf("Parameter 'job_project_location' : the folder "
			"'%s' does not exist.", loc));
	goto done;
    }
    if (FpeReadFile(interp, "job_file", jobPath, MAX_JOB, &image,
	    &len) != TCL_OK) {
	goto done;
    }
    name = RootName(jobPath);
    Tcl_IncrRefCount(name);
    dirObj = Tcl_ObjPrintf("%s/%s", loc, Tcl_GetString(name));
    Tcl_IncrRefCount(dirObj);
    proObj = Tcl_ObjPrintf("%s/%s.pro", Tcl_GetString(dirObj),
	    Tcl_GetString(name));
    Tcl_IncrRefCount(proObj);
    dir = Tcl_GetString(dirObj);
    pro = Tcl_GetString(proObj);
    existed = plat_file_exists(dir);
    if (existed && !overwrite) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE EXISTS {%s}", dir),
		Tcl_ObjPrintf("The job project folder '%s' already exists. Set "
			"-overwrite to 1 to replace it.", dir));
	goto done;
    }
    if (FpeRequireMhsm(interp, s) != TCL_OK) {
	goto done;
    }

    /* The tickets first: a job the M-HSM refuses leaves no project. */
    snprintf(what, sizeof(what), "job file '%s'", jobPath);
    if ((fail = role_mhsm_load_job(s->mhsm, image, len, what, &job, &shared,
	    &err)) != 0) {
	FpeMhsmError(interp, "JOB", fail, NULL, &err);
	goto done;
    }
    CloseProject(s);
    op = (FpeOpenProject *) Tcl_Alloc(sizeof(*op));
    memset(op, 0, sizeof(*op));
    op->path = Tcl_Alloc((unsigned) strlen(pro) + 1);
    strcpy(op->path, pro);
    if ((op->p.name = Dup(Tcl_GetString(name))) == NULL
	    || (op->p.jobSource = Dup(jobPath)) == NULL
	    || (op->p.server = Dup(s->hsm->serverName)) == NULL
	    || DefaultActions(&op->p, &job) != 0) {
	Spps_Error(interp, "PROJECT IO", "out of memory");
	goto done;
    }
    op->p.job = image;
    op->p.jobLen = len;
    image = NULL;
    proto_sha384(op->p.job, op->p.jobLen, op->p.jobDigest);
    memcpy(op->p.mhsmUuid, role_mhsm_uuid(s->mhsm), 41);
    op->p.created = (uint64_t) time(NULL);
    op->job = job;
    memset(&job, 0, sizeof(job));
    if (existed) {
	Spps_Log(interp, "File/Folder '%s' will be overwritten.", dir);
	if (plat_remove_tree(dir, &pe) != 0) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE IO {%s}", dir),
		    Tcl_NewStringObj(pe.msg, -1));
	    goto done;
	}
    }
    if (plat_mkdirs(dir, 0755, &pe) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE IO {%s}", dir),
		Tcl_NewStringObj(pe.msg, -1));
	goto done;
    }
    s->project = op;
    op = NULL;
    if (FpeSaveProject(interp, s) != TCL_OK) {
	CloseProject(s);
	goto done;
    }
    LogJobLoaded(interp, s, &s->project->job, shared);
    Spps_Log(interp, "Created new project '%s'", pro);
    JobDie(&s->project->job, die);
    if (FpeConnect(interp, s, die, 1) != TCL_OK) {
	goto done;
    }
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "create_job_project");
    Tcl_ResetResult(interp);
    rc = TCL_OK;
  done:
    if (op != NULL) {
	Tcl_Free(op->path);
	fpe_project_free(&op->p);
	proto_job_free(&op->job);
	Tcl_Free((char *) op);
    }
    proto_job_free(&job);
    free(image);
    if (name != NULL) {
	Tcl_DecrRefCount(name);
    }
    if (dirObj != NULL) {
	Tcl_DecrRefCount(dirObj);
	Tcl_DecrRefCount(proObj);
    }
    Tcl_Free(jobPath);
    Tcl_Free(loc);
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * OpenProjectFile --
 *	Reads a .pro (checked under the key of the HSM it names, which must
 *	be the HSM of the settings) and has the M-HSM check its job again.
 */
static int
OpenProjectFile(Tcl_Interp *interp, FpeSession *s, const char *path)
{
    FpeOpenProject *op;
    uint8_t *image = NULL, key[32];
    size_t len = 0;
    char *server = NULL, what[1100];
    ProtoError err;
    int fail, rc = TCL_ERROR;

    if (FpeReadFile(interp, "project", path, FPE_MAX_PROJECT, &image,
	    &len) != TCL_OK) {
	return TCL_ERROR;
    }
    snprintf(what, sizeof(what), "project file '%s'", path);
    if (fpe_project_server(image, len, what, &server, &err) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("PROJECT CORRUPT {%s}", path),
		Tcl_NewStringObj(err.msg, -1));
	goto done;
    }
    if (FpeRequireMhsm(interp, s) != TCL_OK) {
	goto done;
    }
    if (strcmp(server, s->settings.server) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("PROJECT WRONG_HSM {%s}", path),
		Tcl_ObjPrintf("project '%s' was created with HSM server '%s'; "
			"the HSM parameters name '%s' (set_hsm_params)", path,
			server, s->settings.server));
	goto done;
    }
    if (HsmKey(interp, s->hsm, PROJECT_MAC_LABEL, key) != TCL_OK) {
	goto done;
    }
    op = (FpeOpenProject *) Tcl_Alloc(sizeof(*op));
    memset(op, 0, sizeof(*op));
    rc = fpe_project_read(image, len, what, key, &op->p, &err);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != 0) {
	Tcl_Free((char *) op);
	rc = Spps_ErrorObj(interp, Tcl_ObjPrintf("PROJECT CORRUPT {%s}", path),
		Tcl_ObjPrintf("%s (the file is damaged or was altered)",
			err.msg));
	goto done;
    }
    snprintf(what, sizeof(what), "the job of project '%s'", path);
    if ((fail = role_mhsm_check_job(s->mhsm, op->p.job, op->p.jobLen, what,
	    &op->job, &err)) != 0) {
	fpe_project_free(&op->p);
	Tcl_Free((char *) op);
	rc = FpeMhsmError(interp, "JOB", fail, NULL, &err);
	goto done;
    }
    op->path = Tcl_Alloc((unsigned) strlen(path) + 1);
    strcpy(op->path, path);
    CloseProject(s);
    s->project = op;
    rc = TCL_OK;
  done:
    free(server);
    free(image);
    return rc;
}

/*
 * open_project --
 *	Opens a job project; with -connect_programmers (the default) the
 *	programmers are connected first, as the tool does at start-up.
 */
static int
OpenProjectObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"project", SPPS_OPT_STRING, 1, NULL, NULL},
	{"connect_programmers", SPPS_OPT_BOOL, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[2];
    char *path, die[32];
    int connect = 1, rc = TCL_ERROR;

    (void) cd;
    if (FPE_PARSE(interp, "open_project -project {path and name of the "
	    "project file} [-connect_programmers value]", opts, objc, objv,
	    v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (v[1] != NULL) {
	Tcl_GetBooleanFromObj(NULL, v[1], &connect);
    }
    path = FpeNormalizePath(interp, Tcl_GetString(v[0]));
    if (OpenProjectFile(interp, s, path) != TCL_OK) {
	goto done;
    }
    JobDie(&s->project->job, die);
    if (connect && FpeConnect(interp, s, die, 1) != TCL_OK) {
	goto done;
    }
    Spps_Log(interp, "Opened '%s'", path);
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "open_project");
    Tcl_ResetResult(interp);
    rc = TCL_OK;
  done:
    Tcl_Free(path);
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * CloseProjectObjCmd --
 *	close_project: closes the job project (warning if it has unsaved
 *	changes).
 */
static int
CloseProjectObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    FpeSession *s = FpeGetSession(interp);

    (void) cd;
    if (objc != 1) {
	Tcl_WrongNumArgs(interp, 1, objv, NULL);
	return TCL_ERROR;
    }
    if (FpeRequireProject(interp, s, "close_project") != TCL_OK) {
	return TCL_ERROR;
    }
    if (s->project->dirty) {
	Spps_Log(interp, "Warning: the changes to project '%s' were not saved "
		"(save_project).", s->project->path);
    }
    CloseProject(s);
    Spps_Log(interp, "Project closed.");
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "close_project");
    return TCL_OK;
}

/*
 * SaveProjectObjCmd --
 *	save_project.
 */
static int
SaveProjectObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    FpeSession *s = FpeGetSession(interp);

    (void) cd;
    if (objc != 1) {
	Tcl_WrongNumArgs(interp, 1, objv, NULL);
	return TCL_ERROR;
    }
    if (FpeRequireProject(interp, s, "save_project") != TCL_OK
	    || FpeSaveProject(interp, s) != TCL_OK) {
	return TCL_ERROR;
    }
    Spps_Log(interp, "Project saved.");
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "save_project");
    return TCL_OK;
}

/*
 * set_programming_action --
 *	Chooses the action of a device of the job's chain.  PROGRAM, VERIFY
 *	and ERASE need a ticket of the job for that device; DEVICE_INFO,
 *	READ_IDCODE and VERIFY_DIGEST need none.
 */
static int
SetProgrammingActionObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const char *const actions[] = {"PROGRAM", "VERIFY", "ERASE",
	"DEVICE_INFO", "READ_IDCODE", "VERIFY_DIGEST",
	"ENC_DATA_AUTHENTICATION", NULL};
    static const SppsOption opts[] = {
	{"name", SPPS_OPT_STRING, 0, NULL, NULL},
	{"action", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    FpeProject *p;
    Tcl_Obj *v[2];
    const char *device, *action = NULL;
    char *copy;
    size_t i, d;
    int rc = TCL_ERROR;

    (void) cd;
    if (FPE_PARSE(interp, "set_programming_action [ -name {name} ] -action "
	    "{ action }", opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (FpeRequireProject(interp, s, "set_programming_action") != TCL_OK) {
	goto done;
    }
    p = &s->project->p;
    for (i = 0; actions[i] != NULL; i++) {
	if (strcasecmp(Tcl_GetString(v[1]), actions[i]) == 0) {
	    action = actions[i];
	}
    }
    if (action == NULL) {
	Spps_Error(interp, "OPTION VALUE action", "The action '%s' is not "
		"supported. You must select the programming action from this "
		"list: 'PROGRAM, VERIFY, ERASE, DEVICE_INFO, READ_IDCODE, "
		"VERIFY_DIGEST'.", Tcl_GetString(v[1]));
	goto done;
    }
    if (strcmp(action, "ENC_DATA_AUTHENTICATION") == 0) {
	Spps_Error(interp, "OPTION VALUE action", "The action "
		"'ENC_DATA_AUTHENTICATION' is not available for an HSM job: its "
		"bitstream key never leaves the M-HSM and the device.");
	goto done;
    }
    if (v[0] == NULL) {
	if (p->nActions != 1) {
	    Spps_Error(interp, "OPTION MISSING name", "You must specify the "
		    "device name parameter for the command "
		    "'set_programming_action' in chain programming mode.");
	    goto done;
	}
	d = 0;
    } else {
	for (d = 0; d < p->nActions; d++) {
	    if (strcmp(p->actions[d].device, Tcl_GetString(v[0])) == 0) {
		break;
	    }
	}
	if (d == p->nActions) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("DEVICE UNKNOWN {%s}",
		    Tcl_GetString(v[0])), Tcl_ObjPrintf("The device with name "
		    "'%s' does not exist.", Tcl_GetString(v[0])));
	    goto done;
	}
    }
    device = p->actions[d].device;
    if ((strcmp(action, "PROGRAM") == 0 || strcmp(action, "VERIFY") == 0
	    || strcmp(action, "ERASE") == 0)
	    && FpeTicketForAction(&s->project->job, device, action) < 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("OPTION VALUE action"),
		Tcl_ObjPrintf("The action '%s' is not available for device "
			"'%s': job '%s' has no ticket for it.", action, device,
			s->project->job.jobName));
	goto done;
    }
    if ((copy = Dup(action)) == NULL) {
	Spps_Error(interp, "PROJECT IO", "out of memory");
	goto done;
    }
    free(p->actions[d].action);
    p->actions[d].action = copy;
    s->project->dirty = 1;
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "set_programming_action");
    Tcl_ResetResult(interp);
    rc = TCL_OK;
  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Tickets                                                              */
/* ------------------------------------------------------------------ */

/* A ticket id shown in the HSM's byte order (reversed) or as printed. */
static void
ShowId(const uint8_t id[PROTO_TICKET_ID], int hsmOrder,
	char out[2 * PROTO_TICKET_ID + 1])
{
    uint8_t r[PROTO_TICKET_ID];
    size_t i;

    for (i = 0; i < PROTO_TICKET_ID; i++) {
	r[i] = hsmOrder ? id[PROTO_TICKET_ID - 1 - i] : id[i];
    }
    FpeIdHex(r, out);
}

/*
 * LeftText --
 *	Codes left, or "unlimited".
 */
static void
LeftText(int64_t max, int64_t completed, int64_t pending, char *buf, size_t n)
{
    if (max == PROTO_UNLIMITED) {
	snprintf(buf, n, "unlimited");
    } else {
	snprintf(buf, n, "%lld", (long long) (max - completed - pending));
    }
}

/*
 * list_all_hsm_tickets --
 *	The ids of the live tickets the M-HSM holds (ended tickets are
 *	removed; their tombstones are not listed).
 */
static int
ListAllHsmTicketsObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"output_file", SPPS_OPT_STRING, 0, NULL, NULL},
	{"hsm_byte_order", SPPS_OPT_BOOL, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[2], *result = NULL, *text = NULL;
    RoleMhsmTicket *list = NULL;
    size_t n = 0, i;
    ProtoError err;
    char *path = NULL, hex[2 * PROTO_TICKET_ID + 1], left[32];
    int hsmOrder = 0, fail, rc = TCL_ERROR;

    (void) cd;
    if (FPE_PARSE(interp, "list_all_hsm_tickets [-output_file \"Output file "
	    "which contains list of ticket IDs inside HSM\"] \\ "
	    "[-hsm_byte_order \"TRUE | FALSE\"]", opts, objc, objv,
	    v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (v[1] != NULL) {
	Tcl_GetBooleanFromObj(NULL, v[1], &hsmOrder);
    }
    if (v[0] != NULL) {
	path = FpeNormalizePath(interp, Tcl_GetString(v[0]));
	if (FpeCheckWritable(interp, "output_file", path) != TCL_OK) {
	    goto done;
	}
    }
    if (FpeRequireMhsm(interp, s) != TCL_OK) {
	Spps_Error(interp, "HSMPARAMS NONE", "Fpeng error: Unable to "
		"create/get HSM client. %s", Tcl_GetString(Tcl_GetObjResult(
		interp)));
	goto done;
    }
    if ((fail = role_mhsm_list_tickets(s->mhsm, &list, &n, &err)) != 0) {
	FpeMhsmError(interp, "MHSM", fail, NULL, &err);
	goto done;
    }
    result = Tcl_NewListObj(0, NULL);
    text = Tcl_NewObj();
    Tcl_IncrRefCount(result);
    Tcl_IncrRefCount(text);
    for (i = 0; i < n; i++) {
	if (list[i].ended) {
	    continue;
	}
	ShowId(list[i].id, hsmOrder, hex);
	LeftText(list[i].maxDevices, list[i].completed, list[i].pending, left,
		sizeof(left));
	Tcl_ListObjAppendElement(NULL, result, Tcl_NewStringObj(hex, -1));
	Tcl_AppendPrintfToObj(text, "%s\n", hex);
	Spps_Log(interp, "Ticket ID: %s (ticket '%s' of job '%s', %s, "
		"authorization codes left: %s)", hex, list[i].name,
		list[i].jobName, list[i].action, left);
    }
    if (path != NULL) {
	int len;
	const char *bytes = Tcl_GetStringFromObj(text, &len);

	if (FpeWriteFile(interp, path, (const uint8_t *) bytes, (size_t) len,
		0644) != TCL_OK) {
	    goto done;
	}
	Spps_Log(interp, "Ticket IDs written to '%s'", path);
    }
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "list_all_hsm_tickets");
    Tcl_SetObjResult(interp, result);
    rc = TCL_OK;
  done:
    if (result != NULL) {
	Tcl_DecrRefCount(result);
	Tcl_DecrRefCount(text);
    }
    role_mhsm_tickets_free(list, n);
    if (path != NULL) {
	Tcl_Free(path);
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* Parses one or more hex ticket ids (spaces between) into ids. */
static int
ParseTicketIds(Tcl_Interp *interp, Tcl_Obj *value, uint8_t **ids, size_t *n)
{
    Tcl_Obj **words;
    int count, i;

    if (Tcl_ListObjGetElements(NULL, value, &count, &words) != TCL_OK
	    || count == 0) {
	return Spps_ErrorObj(interp, Tcl_NewStringObj("OPTION VALUE ticket_ids",
		-1), Tcl_ObjPrintf("'%s' is not a valid hex string. Specify a "
		"valid hex string for ticket ID.", Tcl_GetString(value)));
    }
    *ids = malloc((size_t) count * PROTO_TICKET_ID);
    if (*ids == NULL) {
	return Spps_Error(interp, "MHSM FAIL", "out of memory");
    }
    for (i = 0; i < count; i++) {
	const char *w = Tcl_GetString(words[i]);

	if (strlen(w) != 2 * PROTO_TICKET_ID
		|| proto_unhex(w, *ids + (size_t) i * PROTO_TICKET_ID,
			PROTO_TICKET_ID) != 0) {
	    free(*ids);
	    *ids = NULL;
	    return Spps_ErrorObj(interp, Tcl_NewStringObj(
		    "OPTION VALUE ticket_ids", -1), Tcl_ObjPrintf("'%s' is not "
		    "a valid hex string. Specify a valid hex string for ticket "
		    "ID (%d hex digits).", w, 2 * PROTO_TICKET_ID));
	}
    }
    *n = (size_t) count;
    return TCL_OK;
}

/*
 * remove_hsm_tickets --
 *	Terminates tickets by id or by the reply that numbered them.  Without
 *	-force, a ticket with codes left or devices in progress is refused:
 *	its job could still run.  Removed tickets are tombstones with signed
 *	end certifiers (complete_prog_job of their project exports them).
 */
static int
RemoveHsmTicketsObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"ticket_ids", SPPS_OPT_STRING, 0, NULL, NULL},
	{"reply_file", SPPS_OPT_STRING, 0, NULL, NULL},
	{"force", SPPS_OPT_BOOL, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[3];
    uint8_t *ids = NULL, *image = NULL;
    size_t n = 0, len = 0, removed = 0, i, j, nList = 0;
    RoleMhsmTicket *list = NULL;
    ProtoReply reply;
    ProtoError err;
    char *path = NULL, hex[2 * PROTO_TICKET_ID + 1], what[1100];
    int force = 0, fail, rc = TCL_ERROR;

    (void) cd;
    memset(&reply, 0, sizeof(reply));
    if (FPE_PARSE(interp, "remove_hsm_tickets [-ticket_ids \"[Ticket IDs to "
	    "remove]+\"] \\ [-reply_file \"Reply file containing ticket IDs to "
	    "remove\"] \\ [-force \"TRUE | FALSE\"]", opts, objc, objv,
	    v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (v[2] != NULL) {
	Tcl_GetBooleanFromObj(NULL, v[2], &force);
    }
    if (v[0] == NULL && v[1] == NULL) {
	Spps_Error(interp, "OPTION MISSING ticket_ids", "Specify one of the "
		"required arguments: 'ticket_ids' or 'reply_file'.");
	goto done;
    }
    if (v[0] != NULL && ParseTicketIds(interp, v[0], &ids, &n) != TCL_OK) {
	goto done;
    }
    if (FpeRequireMhsm(interp, s) != TCL_OK) {
	goto done;
    }
    if (v[1] != NULL) {
	uint8_t *grown;

	path = FpeNormalizePath(interp, Tcl_GetString(v[1]));
	if (FpeReadFile(interp, "reply_file", path, MAX_REQUEST, &image,
		&len) != TCL_OK) {
	    goto done;
	}
	snprintf(what, sizeof(what), "job reply file '%s'", path);
	if (proto_reply_read(image, len, what, NULL, &reply, &err) != 0
		|| strcmp(reply.mhsmUuid, role_mhsm_uuid(s->mhsm)) != 0) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("REQUEST CORRUPT {%s}", path),
		    Tcl_ObjPrintf("%s", reply.jobName == NULL ? err.msg
		    : "the job reply is not one of this M-HSM"));
	    goto done;
	}
	if ((grown = realloc(ids, (n + reply.nTickets) * PROTO_TICKET_ID))
		== NULL) {
	    Spps_Error(interp, "MHSM FAIL", "out of memory");
	    goto done;
	}
	ids = grown;
	for (i = 0; i < reply.nTickets; i++) {
	    memcpy(ids + (n++) * PROTO_TICKET_ID, reply.tickets[i].id,
		    PROTO_TICKET_ID);
	}
    }
    if (!force) {
	if ((fail = role_mhsm_list_tickets(s->mhsm, &list, &nList,
		&err)) != 0) {
	    FpeMhsmError(interp, "MHSM", fail, NULL, &err);
	    goto done;
	}
	for (i = 0; i < n; i++) {
	    for (j = 0; j < nList; j++) {
		const RoleMhsmTicket *t = &list[j];

		if (memcmp(t->id, ids + i * PROTO_TICKET_ID,
			PROTO_TICKET_ID) != 0 || t->ended) {
		    continue;
		}
		if (t->pending > 0 || t->maxDevices == PROTO_UNLIMITED
			|| t->completed < t->maxDevices) {
		    FpeIdHex(t->id, hex);
		    Spps_ErrorObj(interp, Tcl_ObjPrintf("TICKET LIVE %s", hex),
			    Tcl_ObjPrintf("ticket '%s' (ID %s) of job '%s' can "
				    "still be used (%s); set -force to TRUE to "
				    "remove it anyway", t->name, hex,
				    t->jobName, t->pending > 0
				    ? "devices in progress"
				    : "authorization codes left"));
		    goto done;
		}
	    }
	}
    }
    if ((fail = role_mhsm_remove_tickets(s->mhsm, ids, n, &removed,
	    &err)) != 0) {
	FpeMhsmError(interp, "TICKET", fail, NULL, &err);
	goto done;
    }
    for (i = 0; i < n; i++) {
	FpeIdHex(ids + i * PROTO_TICKET_ID, hex);
	Spps_Log(interp, "Ticket ID: %s removed from the HSM", hex);
    }
    Spps_Log(interp, "%lu ticket%s removed (%lu had ended already).",
	    (unsigned long) removed, removed == 1 ? "" : "s",
	    (unsigned long) (n - removed));
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "remove_hsm_tickets");
    Tcl_ResetResult(interp);
    rc = TCL_OK;
  done:
    role_mhsm_tickets_free(list, nList);
    proto_reply_free(&reply);
    free(ids);
    free(image);
    if (path != NULL) {
	Tcl_Free(path);
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Log, script, mode                                                    */
/* ------------------------------------------------------------------ */

/*
 * SaveLogObjCmd --
 *	save_log -file: the session's log, one line each.
 */
static int
SaveLogObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"file", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[1], *lines, *text;
    char *path;
    const char *bytes;
    int len, rc = TCL_ERROR;

    (void) cd;
    if (FPE_PARSE(interp, "save_log -file {absolute or relative path of log "
	    "file}", opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    path = FpeNormalizePath(interp, Tcl_GetString(v[0]));
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "save_log");
    lines = Spps_LogLines(interp);
    Tcl_IncrRefCount(lines);
    text = Tcl_NewObj();
    Tcl_IncrRefCount(text);
    {
	Tcl_Obj **elems;
	int n, i;

	Tcl_ListObjGetElements(NULL, lines, &n, &elems);
	for (i = 0; i < n; i++) {
	    Tcl_AppendObjToObj(text, elems[i]);
	    Tcl_AppendToObj(text, "\n", 1);
	}
    }
    bytes = Tcl_GetStringFromObj(text, &len);
    if (FpeCheckWritable(interp, "file", path) == TCL_OK
	    && FpeWriteFile(interp, path, (const uint8_t *) bytes, (size_t) len,
		    0644) == TCL_OK) {
	Tcl_ResetResult(interp);
	rc = TCL_OK;
    }
    Tcl_DecrRefCount(text);
    Tcl_DecrRefCount(lines);
    Tcl_Free(path);
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* Options whose values are paths (export_script rewrites them). */
static int
IsPathOption(const char *opt)
{
    static const char *const paths[] = {"-project", "-job_file",
	"-job_project_location", "-request_file", "-reply_file",
	"-job_status_file", "-file", "-output_file", NULL};
    int i;

    for (i = 0; paths[i] != NULL; i++) {
	if (strcmp(opt, paths[i]) == 0) {
	    return 1;
	}
    }
    return 0;
}

/*
 * export_script --
 *	The session's commands as a script, paths made relative (to the
 *	current directory) or absolute.
 */
static int
ExportScriptObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"file", SPPS_OPT_STRING, 1, NULL, NULL},
	{"relative_path", SPPS_OPT_BOOL, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[2], *script, **cmds, *cwd;
    char *path, date[64];
    time_t now = time(NULL);
    const char *bytes;
    int relative = 0, n, i, len, rc = TCL_ERROR;

    (void) cd;
    if (FPE_PARSE(interp, "export_script -file {absolute or relative path to "
	    "exported file} -relative_path <value>", opts, objc, objv,
	    v) != TCL_OK) {
	return TCL_ERROR;
    }
    Tcl_GetBooleanFromObj(NULL, v[1], &relative);
    if (Tcl_GetString(v[0])[0] == '\0') {
	Spps_Error(interp, "OPTION VALUE file", "Parameter 'file' has illegal "
		"value.");
	goto out;
    }
    path = FpeNormalizePath(interp, Tcl_GetString(v[0]));
    cwd = Tcl_FSGetCwd(NULL);
    if (cwd == NULL) {
	cwd = Tcl_NewStringObj(".", -1);
	Tcl_IncrRefCount(cwd);
    }
    FpeLocalTime(now, "%a %b %d %H:%M:%S %Y", date, sizeof(date));
    script = Tcl_ObjPrintf("# Microsemi Tcl Script\n# flashpro\n# Date: %s\n"
	    "# Directory %s\n# File %s\n\n", date, Tcl_GetString(cwd), path);
    Tcl_IncrRefCount(script);
    Tcl_ListObjGetElements(NULL, s->history, &n, &cmds);
    for (i = 0; i < n; i++) {
	Tcl_Obj **words, *line = Tcl_NewListObj(0, NULL);
	int nw, w;

	Tcl_ListObjGetElements(NULL, cmds[i], &nw, &words);
	for (w = 0; w < nw; w++) {
	    Tcl_Obj *word = words[w];

	    if (w > 0 && IsPathOption(Tcl_GetString(words[w - 1]))) {
		char *abs = FpeNormalizePath(interp, Tcl_GetString(word));
		size_t cl = strlen(Tcl_GetString(cwd));

		if (relative && strncmp(abs, Tcl_GetString(cwd), cl) == 0
			&& (abs[cl] == '/' || abs[cl] == '\0')) {
		    word = Tcl_ObjPrintf("./%s", abs[cl] ? abs + cl + 1 : "");
		} else {
		    word = Tcl_NewStringObj(abs, -1);
		}
		Tcl_Free(abs);
	    }
	    Tcl_ListObjAppendElement(NULL, line, word);
	}
	Tcl_AppendObjToObj(script, line);
	Tcl_AppendToObj(script, "\n", 1);
	Tcl_DecrRefCount(line);
    }
    bytes = Tcl_GetStringFromObj(script, &len);
    if (FpeCheckWritable(interp, "file", path) == TCL_OK
	    && FpeWriteFile(interp, path, (const uint8_t *) bytes, (size_t) len,
		    0644) == TCL_OK) {
	Spps_Log(interp, "Script exported to '%s'", path);
	Spps_LogSucceeded(interp, "export_script");
	Tcl_ResetResult(interp);
	rc = TCL_OK;
    }
    Tcl_DecrRefCount(script);
    Tcl_DecrRefCount(cwd);
    Tcl_Free(path);
  out:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * set_fpexpress_mode --
 *	Operator or developer mode, kept per user with the settings.  Not
 *	while a job project is open.
 */
static int
SetFpexpressModeObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"mode", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    FpeSession *s = FpeGetSession(interp);
    Tcl_Obj *v[1];
    const char *mode;
    char *copy;
    int rc = TCL_ERROR;

    (void) cd;
    if (FPE_PARSE(interp, "set_fpexpress_mode -mode \"operator_mode | "
	    "developer_mode\"", opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    mode = Tcl_GetString(v[0]);
    if (strcasecmp(mode, "operator_mode") == 0
	    || strcasecmp(mode, "operator") == 0) {
	mode = "operator_mode";
    } else if (strcasecmp(mode, "developer_mode") == 0
	    || strcasecmp(mode, "developer") == 0) {
	mode = "developer_mode";
    } else {
	Spps_Error(interp, "OPTION VALUE mode", "mode: Invalid argument value: "
		"'%s'(expecting operator_mode or developer_mode).", mode);
	goto done;
    }
    if (s->project != NULL) {
	Spps_Error(interp, "PROJECT OPEN", "Close the job project '%s' before "
		"changing the FlashPro Express mode.", s->project->path);
	goto done;
    }
    if (LoadSettings(interp, s) != TCL_OK) {
	goto done;
    }
    if ((copy = Dup(mode)) == NULL) {
	Spps_Error(interp, "HSMPARAMS IO", "out of memory");
	goto done;
    }
    free(s->settings.mode);
    s->settings.mode = copy;
    if (s->hasSettings && OpenServer(interp, s, s->settings.server) != TCL_OK) {
	goto done;
    }
    if (SaveSettings(interp, s) != TCL_OK) {
	goto done;
    }
    Spps_Log(interp, "FlashPro Express is in %s.", strcmp(mode,
	    "operator_mode") == 0 ? "Operator mode" : "Developer mode");
    FpeHistory(s, objc, objv);
    Spps_LogSucceeded(interp, "set_fpexpress_mode");
    Tcl_SetObjResult(interp, Tcl_NewStringObj(mode, -1));
    rc = TCL_OK;
  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Registration                                                         */
/* ------------------------------------------------------------------ */

const FpeCommand fpeMainCommands[] = {
    {"set_hsm_params", SetHsmParamsObjCmd, NULL},
    {"process_job_request", ProcessJobRequestObjCmd, NULL},
    {"create_job_project", CreateJobProjectObjCmd, NULL},
    {"open_project", OpenProjectObjCmd, NULL},
    {"close_project", CloseProjectObjCmd, NULL},
    {"save_project", SaveProjectObjCmd, NULL},
    {"set_programming_action", SetProgrammingActionObjCmd, NULL},
    {"list_all_hsm_tickets", ListAllHsmTicketsObjCmd, NULL},
    {"remove_hsm_tickets", RemoveHsmTicketsObjCmd, NULL},
    {"save_log", SaveLogObjCmd, NULL},
    {"export_script", ExportScriptObjCmd, NULL},
    {"set_fpexpress_mode", SetFpexpressModeObjCmd, NULL},
    {NULL, NULL, NULL}
};

/*
 * SppsFpexpress_Init --
 *	Creates the FlashPro Express commands in the global namespace of an
 *	interpreter that does not have Job Manager's (same names).
 */
int
SppsFpexpress_Init(Tcl_Interp *interp)
{
    static const FpeCommand *const tables[] = {
	fpeMainCommands, fpeRunCommands, NULL
    };
    int t, i;

    if (Tcl_PkgPresent(interp, "jobmgr", NULL, 0) != NULL) {
	Tcl_ResetResult(interp);
	return Spps_Error(interp, "PACKAGE CONFLICT jobmgr", "the FlashPro "
		"Express commands (package fpexpress) cannot be loaded into an "
		"interpreter that has the Job Manager commands (package "
		"jobmgr): both define set_hsm_params, open_project and "
		"close_project.  Use one interpreter per tool (interp create).");
    }
    Tcl_ResetResult(interp);
    FpeGetSession(interp);
    for (t = 0; tables[t] != NULL; t++) {
	for (i = 0; tables[t][i].name != NULL; i++) {
	    Tcl_CreateObjCommand(interp, tables[t][i].name, tables[t][i].proc,
		    (ClientData) tables[t][i].data, NULL);
	}
    }
    return TCL_OK;
}
