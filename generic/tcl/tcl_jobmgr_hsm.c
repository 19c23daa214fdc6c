/*
 * tcl_jobmgr_hsm.c --
 *
 *	Job Manager's U-HSM parameters and keysets (doc/jobmgr.n):
 *	set_hsm_params, get_hsm_params, create_keyset.
 *
 *	set_hsm_params names the U-HSM by its server name.  The U-HSM is an
 *	embedded software HSM under $SPPS_HOME/hsm/<server>/, provisioned on
 *	first use with the UUIDs given (its identity certified by the
 *	simulated silicon vendor, generic/sim), and refused on a later
 *	mismatch.  The parameters persist per user in
 *	$SPPS_HOME/jobmgr/settings (docs/FORMATS.md, "Job Manager settings")
 *	until set_hsm_params changes them, as the real tool keeps them.
 */

#include "tcl_jobmgr.h"
#include "roles/role_mhsm.h"
#include "sim/sim_factory.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

/* ------------------------------------------------------------------ */
/* The vendor, for provisioning                                         */
/* ------------------------------------------------------------------ */

static int
CertifyByFactory(void *ctx, ProtoCert *cert, ProtoError *err)
{
    return sim_factory_certify((SimFactory *) ctx, cert, err);
}

/*
 * SealDfkByFactory --
 *	RoleMhsmVendor.sealDfkKey through the simulated factory.
 */
static int
SealDfkByFactory(void *ctx, const ProtoCert *mhsmCert, uint8_t **sealed,
	size_t *sealedLen, ProtoError *err)
{
    return sim_factory_seal_dfk_key((SimFactory *) ctx, mhsmCert, sealed,
	    sealedLen, err);
}

/* Opens the simulated vendor's factory and its root for one provisioning. */
static int
OpenVendor(Tcl_Interp *interp, const char *server, SimFactory **f,
	uint8_t root[PROTO_P384_PUB])
{
    ProtoError err;

    *f = NULL;
    if (sim_factory_open(f, &err) != 0 || sim_factory_root(*f, root, &err) != 0) {
	if (*f != NULL) {
	    sim_factory_close(*f);
	    *f = NULL;
	}
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("UHSM VENDOR {%s}", server),
		Tcl_ObjPrintf("set_hsm_params: cannot provision U-HSM '%s': the "
			"silicon vendor's factory is not available: %s", server,
			err.msg));
    }
    return TCL_OK;
}

/*
 * Provision --
 *	Provisions the U-HSM role of an HSM with the vendor's root and
 *	certification (the factory is opened for this call only).
 */
static int
Provision(Tcl_Interp *interp, RoleHsm *hsm, const char *server,
	const char *uuid, const char *master, RoleUhsm **u)
{
    SimFactory *f = NULL;
    uint8_t root[PROTO_P384_PUB];
    ProtoError err;
    RoleFail why = ROLE_FAIL_NONE;
    int rc;

    if (OpenVendor(interp, server, &f, root) != TCL_OK) {
	return TCL_ERROR;
    }
    rc = role_uhsm_provision(hsm, uuid, master, root, CertifyByFactory, f, u,
	    &why, &err);
    if (rc != 0) {
	Tcl_Obj *msg = Tcl_ObjPrintf("set_hsm_params: cannot provision U-HSM "
		"'%s': %s", server, err.msg);

	sim_factory_close(f);
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("%s {%s}",
		why == ROLE_FAIL_STATE ? "HSMPARAMS MISMATCH" : "UHSM ERROR",
		server), msg);
    }
    Spps_Log(interp, "U-HSM '%s' provisioned in '%s': U-HSM UUID %s, master "
	    "key UUID %s; its identity key is certified by the vendor root in "
	    "'%s' (certificate serial %llu).", server, hsm->dir, uuid, master,
	    sim_factory_dir(f),
	    (unsigned long long) role_uhsm_cert(*u)->serial);
    sim_factory_close(f);
    return TCL_OK;
}

/*
 * ProvisionMhsmFunction --
 *	The U-HSM's "M-HSM function" (test execution: -cm_request_type
 *	INTERNAL, FlashPro Express with -hsm_type_u TRUE): an M-HSM role in
 *	the U-HSM's own state directory with the U-HSM's UUID, provisioned
 *	with it (role_mhsm.h).  Done once; later calls only check it.
 */
static int
ProvisionMhsmFunction(Tcl_Interp *interp, RoleHsm *hsm, const char *server,
	const char *uuid)
{
    RoleMhsmVendor vendor;
    SimFactory *f = NULL;
    ProtoError err;
    char have[41];
    int kind, created = 0;

    switch (role_mhsm_provisioned(hsm, have, &kind, &err)) {
    case 1:
	if (strcmp(have, uuid) != 0 || kind != ROLE_MHSM_KIND_UHSM_FUNCTION) {
	    return Spps_ErrorObj(interp, Tcl_ObjPrintf("HSMPARAMS MISMATCH {%s}",
		    server), Tcl_ObjPrintf("set_hsm_params: U-HSM '%s' holds an "
		    "M-HSM %s that is not its own M-HSM function (UUID %s)",
		    server, have, uuid));
	}
	return TCL_OK;
    case 0:
	break;
    default:
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("UHSM ERROR {%s}", server),
		Tcl_ObjPrintf("set_hsm_params: %s", err.msg));
    }
    memset(&vendor, 0, sizeof(vendor));
    if (OpenVendor(interp, server, &f, vendor.root) != TCL_OK) {
	return TCL_ERROR;
    }
    vendor.certify = CertifyByFactory;
    vendor.sealDfkKey = SealDfkByFactory;
    vendor.ctx = f;
    if (role_mhsm_provision(hsm, uuid, ROLE_MHSM_KIND_UHSM_FUNCTION, &vendor,
	    &created, &err) != 0) {
	sim_factory_close(f);
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("UHSM ERROR {%s}", server),
		Tcl_ObjPrintf("set_hsm_params: cannot provision the M-HSM "
			"function of U-HSM '%s': %s", server, err.msg));
    }
    sim_factory_close(f);
    if (created) {
	Spps_Log(interp, "M-HSM function of U-HSM '%s' provisioned with UUID %s "
		"(test execution: -cm_request_type INTERNAL, FlashPro Express "
		"-hsm_type_u TRUE).", server, uuid);
    }
    return TCL_OK;
}

/* ------------------------------------------------------------------ */
/* set_hsm_params                                                       */
/* ------------------------------------------------------------------ */

static int
CanonUuid(Tcl_Interp *interp, const char *opt, Tcl_Obj *value, char out[41])
{
    ProtoError err;

    out[0] = '\0';
    if (value == NULL) {
	return TCL_OK;
    }
    if (proto_uuid_canon(Tcl_GetString(value), out, &err) != 0) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("OPTION VALUE %s", opt),
		Tcl_ObjPrintf("Parameter '%s' has illegal value. %s", opt,
			err.msg));
    }
    return TCL_OK;
}

/*
 * SettingsPath --
 *	$SPPS_HOME/jobmgr/settings and its directory (malloc'ed).
 */
static char *
SettingsPath(Tcl_Interp *interp, char **dirOut)
{
    char *home = plat_spps_home(), *dir, *path;

    *dirOut = NULL;
    if (home == NULL) {
	Spps_Error(interp, "HSMPARAMS IO", "set_hsm_params: cannot find the "
		"spps state directory (set SPPS_HOME or HOME)");
	return NULL;
    }
    dir = plat_join(home, "jobmgr");
    free(home);
    if (dir == NULL) {
	Spps_Error(interp, "HSMPARAMS IO", "set_hsm_params: out of memory");
	return NULL;
    }
    path = plat_join(dir, "settings");
    *dirOut = dir;
    return path;
}

/*
 * set_hsm_params -hsm_server_name name ?-u_hsm_uuid uuid?
 *	?-u_master_hsm_uuid uuid? ?-m_hsm_uuid uuid? ?-hsm_keyset_dir dir?
 */
static int
SetHsmParamsObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    enum { O_SERVER, O_UHSM, O_MASTER, O_MHSM, O_KEYSET_DIR };
    static const SppsOption opts[] = {
	{"hsm_server_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"u_hsm_uuid", SPPS_OPT_STRING, 0, NULL, NULL},
	{"u_master_hsm_uuid", SPPS_OPT_STRING, 0, NULL, NULL},
	{"m_hsm_uuid", SPPS_OPT_STRING, 0, NULL, NULL},
	{"hsm_keyset_dir", SPPS_OPT_STRING, 0, NULL, "hsm_key_set_dir"},
	{NULL, 0, 0, NULL, NULL}
    };
    static const char usage[] = "set_hsm_params -hsm_server_name "
	    "\"hsm_server\" -u_hsm_uuid \"u_uuid\" -u_master_hsm_uuid "
	    "\"u_master_uuid\" -hsm_keyset_dir \"keyset_dir\" -m_hsm_uuid "
	    "\"m_uuid\"";
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[5];
    char uuid[41], master[41], mhsm[41];
    const char *server;
    char *keysetDir = NULL, *settingsDir = NULL, *settingsPath = NULL;
    RoleHsm *hsm = NULL;
    RoleUhsm *u = NULL;
    ProtoError err;
    PlatError perr;
    JmSettings st;
    uint8_t key[32], *image = NULL;
    size_t len = 0;
    int rc = TCL_ERROR, sameServer, createdDir = 0;

    (void) cd;
    memset(&st, 0, sizeof(st));
    if (JM_PARSE(interp, usage, opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    server = Tcl_GetString(v[O_SERVER]);
    if (server[0] == '\0') {
	Spps_Error(interp, "OPTION VALUE hsm_server_name",
		"HSM server name cannot be empty.");
	goto done;
    }
    if (CanonUuid(interp, "u_hsm_uuid", v[O_UHSM], uuid) != TCL_OK
	    || CanonUuid(interp, "u_master_hsm_uuid", v[O_MASTER], master)
		!= TCL_OK
	    || CanonUuid(interp, "m_hsm_uuid", v[O_MHSM], mhsm) != TCL_OK) {
	goto done;
    }
    /* The parameters saved so far (to keep what is not given again). */
    if (!s->hasSettings) {
	if (JmRequireUhsm(interp, s, "set_hsm_params") != TCL_OK) {
	    Tcl_ResetResult(interp);
	}
    }
    sameServer = s->hasSettings && strcmp(s->settings.server, server) == 0;
    if (s->project != NULL && !sameServer) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("PROJECT OPEN {%s}",
		s->project->name), Tcl_ObjPrintf("set_hsm_params: project '%s' "
		"is open with U-HSM '%s': close it before changing the U-HSM",
		s->project->name, s->settings.server));
	goto done;
    }
    if (sameServer) {
	hsm = s->hsm;
	u = s->uhsm;
    } else {
	if (role_hsm_open(server, &hsm, &err) != 0) {
	    Spps_ErrorObj(interp,
		    Tcl_NewStringObj("OPTION VALUE hsm_server_name", -1),
		    Tcl_ObjPrintf("Could not get server information. Check "
			    "server address and connection and try again. (%s)",
			    err.msg));
	    goto done;
	}
	switch (role_uhsm_open(hsm, &u, &err)) {
	case 1:
	    break;
	case 0:
	    if (uuid[0] == '\0' || master[0] == '\0') {
		Spps_ErrorObj(interp, Tcl_ObjPrintf("OPTION MISSING %s",
			uuid[0] == '\0' ? "u_hsm_uuid" : "u_master_hsm_uuid"),
			Tcl_ObjPrintf("set_hsm_params: U-HSM '%s' is not "
				"provisioned yet: -u_hsm_uuid and "
				"-u_master_hsm_uuid are needed to provision it.",
				server));
		goto done;
	    }
	    if (Provision(interp, hsm, server, uuid, master, &u) != TCL_OK) {
		goto done;
	    }
	    break;
	default:
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("UHSM ERROR {%s}", server),
		    Tcl_ObjPrintf("set_hsm_params: %s", err.msg));
	    goto done;
	}
    }
    /* A provisioned U-HSM keeps its UUIDs for ever. */
    if ((uuid[0] != '\0' && strcmp(uuid, role_uhsm_uuid(u)) != 0)
	    || (master[0] != '\0'
		&& strcmp(master, role_uhsm_master_uuid(u)) != 0)) {
	int isUuid = uuid[0] != '\0' && strcmp(uuid, role_uhsm_uuid(u)) != 0;

	Spps_ErrorObj(interp, Tcl_ObjPrintf("HSMPARAMS MISMATCH {%s} %s",
		server, isUuid ? "u_hsm_uuid" : "u_master_hsm_uuid"),
		Tcl_ObjPrintf("set_hsm_params: U-HSM '%s' was provisioned with "
			"U-HSM UUID %s and master key UUID %s; %s %s does not "
			"match (a U-HSM's UUIDs cannot change)", server,
			role_uhsm_uuid(u), role_uhsm_master_uuid(u),
			isUuid ? "-u_hsm_uuid" : "-u_master_hsm_uuid",
			isUuid ? uuid : master));
	goto done;
    }
    if (ProvisionMhsmFunction(interp, hsm, server, role_uhsm_uuid(u))
	    != TCL_OK) {
	goto done;
    }
    /* The keyset directory: absolute, created if missing. */
    if (v[O_KEYSET_DIR] != NULL) {
	const char *given = Tcl_GetString(v[O_KEYSET_DIR]);

	if (given[0] == '\0') {
	    Spps_Error(interp, "OPTION VALUE hsm_keyset_dir", "Parameter "
		    "'hsm_keyset_dir' has illegal value.");
	    goto done;
	}
	keysetDir = JmNormalizePath(interp, given);
	if (plat_file_exists(keysetDir) && !plat_is_dir(keysetDir)) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE IO {%s}", keysetDir),
		    Tcl_ObjPrintf("Parameter 'hsm_keyset_dir' : '%s' is not a "
			    "directory.", keysetDir));
	    goto done;
	}
	if (!plat_file_exists(keysetDir)) {
	    if (plat_mkdirs(keysetDir, 0700, &perr) != 0) {
		Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE IO {%s}", keysetDir),
			Tcl_ObjPrintf("set_hsm_params: %s", perr.msg));
		goto done;
	    }
	    createdDir = 1;
	}
    }
    st.server = jm_strdup(server);
    snprintf(st.uhsmUuid, sizeof(st.uhsmUuid), "%s", role_uhsm_uuid(u));
    snprintf(st.masterUuid, sizeof(st.masterUuid), "%s",
	    role_uhsm_master_uuid(u));
    if (mhsm[0] != '\0') {
	snprintf(st.mhsmUuid, sizeof(st.mhsmUuid), "%s", mhsm);
    } else if (s->hasSettings) {
	/* Not bound to the U-HSM: kept when another server is named. */
	snprintf(st.mhsmUuid, sizeof(st.mhsmUuid), "%s", s->settings.mhsmUuid);
    }
    if (keysetDir != NULL) {
	st.keysetDir = jm_strdup(keysetDir);
    } else if (s->hasSettings && s->settings.keysetDir != NULL) {
	st.keysetDir = jm_strdup(s->settings.keysetDir);
    }
    st.updated = (uint64_t) time(NULL);
    if (st.server == NULL) {
	Spps_Error(interp, "HSMPARAMS IO", "set_hsm_params: out of memory");
	goto done;
    }
    if ((settingsPath = SettingsPath(interp, &settingsDir)) == NULL) {
	goto done;
    }
    if (plat_mkdirs(settingsDir, 0700, &perr) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("HSMPARAMS IO {%s}", settingsDir),
		Tcl_ObjPrintf("set_hsm_params: %s", perr.msg));
	goto done;
    }
    if (role_mac_key(hsm, "jm settings v1", key, &err) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("UHSM ERROR {%s}", server),
		Tcl_ObjPrintf("set_hsm_params: %s", err.msg));
	goto done;
    }
    rc = jm_settings_write(&st, key, &image, &len, &err);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != 0) {
	rc = TCL_ERROR;
	Spps_ErrorObj(interp, Tcl_ObjPrintf("HSMPARAMS IO {%s}", settingsPath),
		Tcl_ObjPrintf("set_hsm_params: %s", err.msg));
	goto done;
    }
    rc = TCL_ERROR;
    if (JmWriteFile(interp, settingsPath, image, len, 0600) != TCL_OK) {
	goto done;
    }
    /* Adopt: the session now works with this U-HSM and these settings. */
    if (!sameServer) {
	if (s->uhsm != NULL) {
	    role_uhsm_close(s->uhsm);
	}
	if (s->hsm != NULL) {
	    role_hsm_close(s->hsm);
	}
	s->hsm = hsm;
	s->uhsm = u;
    }
    hsm = NULL;
    u = NULL;
    jm_settings_free(&s->settings);
    s->settings = st;
    memset(&st, 0, sizeof(st));
    s->hasSettings = 1;
    s->settingsLoaded = 1;

    Spps_Log(interp, "U-HSM server name: %s", s->settings.server);
    Spps_Log(interp, "U-HSM UUID: %s", s->settings.uhsmUuid);
    Spps_Log(interp, "U-HSM master key UUID: %s", s->settings.masterUuid);
    Spps_Log(interp, "M-HSM UUID: %s", s->settings.mhsmUuid[0]
	    ? s->settings.mhsmUuid : "(not set)");
    if (createdDir) {
	Spps_Log(interp, "Keyset directory '%s' did not exist: created.",
		s->settings.keysetDir);
    }
    Spps_Log(interp, "Keyset directory: %s", s->settings.keysetDir
	    ? s->settings.keysetDir : "(not set)");
    Spps_Log(interp, "HSM parameters saved in '%s'.", settingsPath);
    Spps_LogSucceeded(interp, "set_hsm_params");
    rc = TCL_OK;

  done:
    if (u != NULL && u != s->uhsm) {
	role_uhsm_close(u);
    }
    if (hsm != NULL && hsm != s->hsm) {
	role_hsm_close(hsm);
    }
    jm_settings_free(&st);
    free(image);
    free(settingsPath);
    free(settingsDir);
    if (keysetDir != NULL) {
	Tcl_Free(keysetDir);
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * get_hsm_params
 *	The saved parameters as a dict (not a Microchip command: a Job
 *	Manager user's way to see what set_hsm_params keeps).
 */
static int
GetHsmParamsObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {{NULL, 0, 0, NULL, NULL}};
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[1], *d;
    char when[64];

    (void) cd;
    if (JM_PARSE(interp, "get_hsm_params", opts, objc, objv, v) != TCL_OK
	    || JmRequireUhsm(interp, s, "get_hsm_params") != TCL_OK) {
	return TCL_ERROR;
    }
    d = Tcl_NewDictObj();
#define PUT(k, val) Tcl_DictObjPut(NULL, d, Tcl_NewStringObj(k, -1), \
	Tcl_NewStringObj((val), -1))
    PUT("hsm_server_name", s->settings.server);
    PUT("u_hsm_uuid", s->settings.uhsmUuid);
    PUT("u_master_hsm_uuid", s->settings.masterUuid);
    PUT("m_hsm_uuid", s->settings.mhsmUuid);
    PUT("hsm_keyset_dir", s->settings.keysetDir ? s->settings.keysetDir : "");
    PUT("state_dir", s->hsm->dir);
    JmFormatTime(role_uhsm_provisioned_at(s->uhsm), when, sizeof(when));
    PUT("provisioned", when);
#undef PUT
    Tcl_SetObjResult(interp, d);
    return TCL_OK;
}

/* ------------------------------------------------------------------ */
/* create_keyset                                                        */
/* ------------------------------------------------------------------ */

/* A file name inside the keyset directory (no path). */
int
JmKeysetPath(Tcl_Interp *interp, JmSession *s, const char *opt, Tcl_Obj *value,
	char **path)
{
    const char *name = Tcl_GetString(value);

    *path = NULL;
    if (name[0] == '\0' || strpbrk(name, "/\\:") != NULL
	    || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("OPTION VALUE %s", opt),
		Tcl_ObjPrintf("Parameter '%s' has illegal value. Give a file "
			"name only: keysets are kept in the keyset directory "
			"'%s'.", opt, s->settings.keysetDir));
    }
    *path = plat_join(s->settings.keysetDir, name);
    if (*path == NULL) {
	return Spps_Error(interp, "KEYSET IO", "out of memory");
    }
    return TCL_OK;
}

/* Requires the keyset directory to be set. */
int
JmRequireKeysetDir(Tcl_Interp *interp, JmSession *s, const char *cmd)
{
    if (JmRequireUhsm(interp, s, cmd) != TCL_OK) {
	return TCL_ERROR;
    }
    if (s->settings.keysetDir == NULL) {
	return Spps_Error(interp, "HSMPARAMS NOKEYSETDIR", "%s: no keyset "
		"directory is set: run set_hsm_params -hsm_keyset_dir first",
		cmd);
    }
    return TCL_OK;
}

/*
 * create_keyset -file name ?-source_file name? ?-kip hex? ?-uek1 hex?
 *	?-uek1_base hex? ... (UEK1 UEK2 UEK3 UPK1 UPK2 DPK and their bases)
 */
static int
CreateKeysetObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"file", SPPS_OPT_STRING, 1, NULL, NULL},
	{"source_file", SPPS_OPT_STRING, 0, NULL, NULL},
	{"kip", SPPS_OPT_STRING, 0, NULL, NULL},
	{"uek1", SPPS_OPT_STRING, 0, NULL, NULL},
	{"uek2", SPPS_OPT_STRING, 0, NULL, NULL},
	{"uek3", SPPS_OPT_STRING, 0, NULL, NULL},
	{"upk1", SPPS_OPT_STRING, 0, NULL, NULL},
	{"upk2", SPPS_OPT_STRING, 0, NULL, NULL},
	{"dpk", SPPS_OPT_STRING, 0, NULL, NULL},
	{"uek1_base", SPPS_OPT_STRING, 0, NULL, NULL},
	{"uek2_base", SPPS_OPT_STRING, 0, NULL, NULL},
	{"uek3_base", SPPS_OPT_STRING, 0, NULL, NULL},
	{"upk1_base", SPPS_OPT_STRING, 0, NULL, NULL},
	{"upk2_base", SPPS_OPT_STRING, 0, NULL, NULL},
	{"dpk_base", SPPS_OPT_STRING, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    /* opts[2 + i] is jm_key_names[i]. */
    static const char usage[] = "create_keyset -file <output_file_name> "
	    "[-source_file <source_file_name>] [-kip <token_key>] [-upk1 "
	    "<token_key>] [-upk1_base <base_key>] [-uek1 <token_key>] "
	    "[-uek1_base <base_key>] [-upk2 <token_key>] [-upk2_base "
	    "<base_key>] [-uek2 <token_key>] [-uek2_base <base_key>] [-dpk "
	    "<token_key>] [-dpk_base <base_key>] [-uek3 <token_key>] "
	    "[-uek3_base <base_key>]";
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[15], *imported = Tcl_NewObj(), *names = Tcl_NewObj();
    char *path = NULL, *srcPath = NULL;
    uint8_t *src = NULL, *image = NULL;
    size_t srcLen = 0, len = 0, nPlain = 0, i;
    ProtoNamedBytes plain[13];
    uint8_t values[13][PROTO_KEY];
    ProtoError err;
    RoleFail why;
    JmKeyset hdr;
    int rc = TCL_ERROR;

    (void) cd;
    Tcl_IncrRefCount(imported);
    Tcl_IncrRefCount(names);
    memset(&hdr, 0, sizeof(hdr));
    if (JM_PARSE(interp, usage, opts, objc, objv, v) != TCL_OK) {
	Tcl_DecrRefCount(imported);
	Tcl_DecrRefCount(names);
	return TCL_ERROR;
    }
    /* Plain values: 64 hex digits each. */
    for (i = 0; i < 13; i++) {
	const char *hex;

	if (v[2 + i] == NULL) {
	    continue;
	}
	hex = Tcl_GetString(v[2 + i]);
	if (strncmp(hex, "0x", 2) == 0 || strncmp(hex, "0X", 2) == 0) {
	    hex += 2;
	}
	if (proto_unhex(hex, values[nPlain], PROTO_KEY) != 0) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("OPTION VALUE %s",
		    opts[2 + i].name), Tcl_ObjPrintf("Parameter '%s' has "
		    "illegal value. A key value is 64 hex digits (256 bits).",
		    opts[2 + i].name));
	    goto done;
	}
	plain[nPlain].name = (char *) jm_key_names[i];
	plain[nPlain].data = values[nPlain];
	plain[nPlain].len = PROTO_KEY;
	Tcl_ListObjAppendElement(NULL, imported,
		Tcl_NewStringObj(jm_key_names[i], -1));
	nPlain++;
    }
    if (JmRequireKeysetDir(interp, s, "create_keyset") != TCL_OK
	    || JmKeysetPath(interp, s, "file", v[0], &path) != TCL_OK) {
	goto done;
    }
    if (plat_file_exists(path)) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("KEYSET EXISTS {%s}",
		Tcl_GetString(v[0])), Tcl_ObjPrintf("create_keyset: keyset "
		"file '%s' already exists: a keyset is never overwritten "
		"(its keys may be in use); choose another name", path));
	goto done;
    }
    if (v[1] != NULL) {
	if (JmKeysetPath(interp, s, "source_file", v[1], &srcPath) != TCL_OK
		|| JmReadFile(interp, "source_file", srcPath, JM_MAX_KEYSET,
			&src, &srcLen) != TCL_OK) {
	    goto done;
	}
    }
    {
	Tcl_Obj *origin;

	if (v[1] != NULL) {
	    origin = Tcl_ObjPrintf("derived from keyset '%s'",
		    Tcl_GetString(v[1]));
	} else {
	    origin = Tcl_ObjPrintf("generated by U-HSM %s",
		    role_uhsm_uuid(s->uhsm));
	}
	if (nPlain > 0) {
	    Tcl_AppendPrintfToObj(origin, "; plain-text values imported: %s",
		    Tcl_GetString(imported));
	}
	Tcl_IncrRefCount(origin);
	rc = role_uhsm_keyset_create(s->uhsm, src, srcLen, srcPath, plain,
		nPlain, Tcl_GetString(origin), &image, &len, &why, &err);
	Tcl_DecrRefCount(origin);
	if (rc != 0) {
	    rc = TCL_ERROR;
	    JmRoleError(interp, "KEYSET", why, v[1] ? Tcl_GetString(v[1])
		    : Tcl_GetString(v[0]), &err);
	    goto done;
	}
	rc = TCL_ERROR;
    }
    if (JmWriteFile(interp, path, image, len, 0600) != TCL_OK) {
	goto done;
    }
    if (jm_keyset_read(image, len, path, &hdr, &err) == 0) {
	for (i = 0; i < hdr.nNames; i++) {
	    Tcl_ListObjAppendElement(NULL, names,
		    Tcl_NewStringObj(hdr.names[i], -1));
	}
    }
    Spps_Log(interp, "Created keyset file '%s' (%s).", path, hdr.origin
	    ? hdr.origin : "");
    Spps_Log(interp, "Keys: %s; all wrapped under master key %s of U-HSM %s.",
	    Tcl_GetString(names), role_uhsm_master_uuid(s->uhsm),
	    role_uhsm_uuid(s->uhsm));
    Spps_LogSucceeded(interp, "create_keyset");
    Tcl_SetObjResult(interp, Tcl_NewStringObj(path, -1));
    rc = TCL_OK;

  done:
    OPENSSL_cleanse(values, sizeof(values));
    jm_keyset_free(&hdr);
    free(path);
    free(srcPath);
    free(src);
    free(image);
    Tcl_DecrRefCount(imported);
    Tcl_DecrRefCount(names);
    Spps_FreeOptionValues(opts, v);
    return rc;
}

const JmCommand jmHsmCommands[] = {
    {"create_keyset", CreateKeysetObjCmd},
    {"get_hsm_params", GetHsmParamsObjCmd},
    {"set_hsm_params", SetHsmParamsObjCmd},
    {NULL, NULL}
};
