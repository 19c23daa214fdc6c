/*
 * tcl_jobmgr.c --
 *
 *	The Job Manager command set (package jobmgr, doc/jobmgr.n): its
 *	registration, the per-interpreter session, the helpers shared by the
 *	other tcl_jobmgr_*.c files, and the project commands (new_project,
 *	open_project, save_project, close_project, get_software_info).
 *
 *	A project is <location>/<name>/<name>.jprj (docs/FORMATS.md, "Job
 *	Manager project"): one file, MACed under a key of the U-HSM, written
 *	atomically and durably, and locked (<name>.jprj.lock) while a session
 *	has it open, so that a second process cannot open it at the same
 *	time.  Commands change the project in memory; save_project and
 *	close_project -save TRUE write it; the commands that send a file to
 *	someone (hsmtask_m_request, hsmtask_m_reply, export_hsmtask,
 *	import_job_status) save it themselves, so that what went out is never
 *	lost from the project.
 */

#include "tcl_jobmgr.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#define SESSION_KEY "spps::jobmgr"

/* ------------------------------------------------------------------ */
/* Session                                                              */
/* ------------------------------------------------------------------ */

static void
CloseProject(JmSession *s)
{
    if (s->project != NULL) {
	jm_project_free(s->project);
	free(s->project);
	s->project = NULL;
    }
    if (s->projectPath != NULL) {
	char *owner = NULL;
	size_t n = strlen(s->projectPath);
	PlatError perr;

	if ((owner = malloc(n + 7)) != NULL) {
	    memcpy(owner, s->projectPath, n);
	    memcpy(owner + n, ".owner", 7);
	    plat_remove(owner, &perr);
	    free(owner);
	}
	Tcl_Free(s->projectPath);
	s->projectPath = NULL;
    }
    plat_unlock(&s->lock);
    s->lock.handle = -1;
    s->dirty = 0;
}

/*
 * CloseUhsm --
 *	Closes the session's U-HSM role and HSM.
 */
static void
CloseUhsm(JmSession *s)
{
    if (s->uhsm != NULL) {
	role_uhsm_close(s->uhsm);
	s->uhsm = NULL;
    }
    if (s->hsm != NULL) {
	role_hsm_close(s->hsm);
	s->hsm = NULL;
    }
}

/*
 * SessionDelete --
 *	Assoc data destructor: releases the project lock, closes the HSM.
 */
static void
SessionDelete(ClientData clientData, Tcl_Interp *interp)
{
    JmSession *s = clientData;

    (void) interp;
    CloseProject(s);
    CloseUhsm(s);
    jm_settings_free(&s->settings);
    Tcl_Free((char *) s);
}

/*
 * JmGetSession --
 *	The interpreter's Job Manager session, created on first use.
 */
JmSession *
JmGetSession(Tcl_Interp *interp)
{
    JmSession *s = Tcl_GetAssocData(interp, SESSION_KEY, NULL);

    if (s == NULL) {
	s = (JmSession *) Tcl_Alloc(sizeof(JmSession));
	memset(s, 0, sizeof(*s));
	s->lock.handle = -1;
	Tcl_SetAssocData(interp, SESSION_KEY, SessionDelete, s);
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

int
JmRequireProject(Tcl_Interp *interp, JmSession *s, const char *cmd)
{
    if (s->project == NULL) {
	return Spps_Error(interp, "PROJECT NONE", "%s: no project is open "
		"(new_project or open_project first)", cmd);
    }
    return TCL_OK;
}

/*
 * JmNormalizePath --
 *	An absolute, normalised path (see tcl_jobmgr.h).
 */
char *
JmNormalizePath(Tcl_Interp *interp, const char *path)
{
    Tcl_Obj *p = Tcl_NewStringObj(path, -1), *norm;
    char *out = NULL;

    Tcl_IncrRefCount(p);
    norm = Tcl_FSGetNormalizedPath(interp, p);
    if (norm != NULL) {
	const char *s = Tcl_GetString(norm);

	out = Tcl_Alloc((unsigned) strlen(s) + 1);
	strcpy(out, s);
    }
    Tcl_DecrRefCount(p);
    if (out == NULL) {
	out = Tcl_Alloc((unsigned) strlen(path) + 1);
	strcpy(out, path);
    }
    return out;
}

/*
 * JmReadFile --
 *	Reads an input file with the tools' messages (tcl_jobmgr.h).
 */
int
JmReadFile(Tcl_Interp *interp, const char *opt, const char *path,
	size_t maxLen, uint8_t **data, size_t *len)
{
    PlatError perr;

    *data = NULL;
    if (!plat_file_exists(path)) {
	return Spps_ErrorObj(interp,
		Tcl_ObjPrintf("FILE NOTFOUND {%s}", path),
		Tcl_ObjPrintf("Parameter '%s' : the file '%s' does not exist.",
			opt, path));
    }
    if (plat_is_dir(path)) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE IO {%s}", path),
		Tcl_ObjPrintf("Parameter '%s' : '%s' is a directory, not a "
			"file.", opt, path));
    }
    if (plat_read_file(path, maxLen, data, len, &perr) != 0) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE IO {%s}", path),
		Tcl_ObjPrintf("Parameter '%s' : %s", opt, perr.msg));
    }
    return TCL_OK;
}

/*
 * JmWriteFile --
 *	Writes a file atomically and durably (tcl_jobmgr.h).
 */
int
JmWriteFile(Tcl_Interp *interp, const char *path, const uint8_t *data,
	size_t len, int mode)
{
    PlatError perr;

    if (plat_write_file_durable(path, data, len, mode, &perr) != 0) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE IO {%s}", path),
		Tcl_ObjPrintf("cannot write '%s': %s", path, perr.msg));
    }
    return TCL_OK;
}

/*
 * JmRoleError --
 *	Sets the error of a U-HSM role failure: {SPPS <area> <cond> ?detail?}.
 */
int
JmRoleError(Tcl_Interp *interp, const char *area, RoleFail why,
	const char *detail, const ProtoError *err)
{
    static const char *const conds[] = {
	"ERROR", "CORRUPT", "TAMPERED", "CERT", "MHSM", "REQUEST", "MISMATCH",
	"FOREIGN", "STATE", "HSM"
    };
    const char *cond = (unsigned) why < sizeof(conds) / sizeof(conds[0])
	    ? conds[why] : "ERROR";
    Tcl_Obj *code = Tcl_NewListObj(0, NULL);

    Tcl_ListObjAppendElement(NULL, code, Tcl_NewStringObj(
	    why == ROLE_FAIL_HSM ? "UHSM" : area, -1));
    Tcl_ListObjAppendElement(NULL, code, Tcl_NewStringObj(
	    why == ROLE_FAIL_HSM ? "ERROR" : cond, -1));
    if (detail != NULL) {
	Tcl_ListObjAppendElement(NULL, code, Tcl_NewStringObj(detail, -1));
    }
    return Spps_ErrorObj(interp, code, Tcl_NewStringObj(err->msg, -1));
}

/*
 * JmCheckName --
 *	Checks a name given for a project element (tcl_jobmgr.h).
 */
int
JmCheckName(Tcl_Interp *interp, const char *opt, Tcl_Obj *value)
{
    const char *s = Tcl_GetString(value);
    size_t n = strlen(s), i;

    for (i = 0; i < n; i++) {
	if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f) {
	    break;
	}
    }
    if (n == 0 || n > 256 || i < n) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("OPTION VALUE %s", opt),
		Tcl_ObjPrintf("Parameter '%s' has illegal value. A name is 1 "
			"to 256 characters without control characters.", opt));
    }
    return TCL_OK;
}

/*
 * JmFormatTime --
 *	Formats seconds since 1970 as UTC text.
 */
void
JmFormatTime(uint64_t t, char *buf, size_t len)
{
    time_t tt = (time_t) t;
    struct tm tmv;

#ifdef _WIN32
    gmtime_s(&tmv, &tt);
#else
    gmtime_r(&tt, &tmv);
#endif
    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tmv);
}

/*
 * JmGrow --
 *	Appends a zeroed element to a malloc'ed array; NULL if out of memory.
 */
void *
JmGrow(void **arr, size_t *n, size_t size)
{
    uint8_t *p = realloc(*arr, (*n + 1) * size);

    if (p == NULL) {
	return NULL;
    }
    memset(p + *n * size, 0, size);
    *arr = p;
    return p + (*n)++ * size;
}

/*
 * JmRemoveAt --
 *	Removes element i of an array (the caller freed its contents).
 */
void
JmRemoveAt(void *arr, size_t *n, size_t size, size_t i)
{
    uint8_t *p = arr;

    if (i + 1 < *n) {
	memmove(p + i * size, p + (i + 1) * size, (*n - i - 1) * size);
    }
    (*n)--;
}

/* ------------------------------------------------------------------ */
/* Settings and the U-HSM                                               */
/* ------------------------------------------------------------------ */

int
JmRequireUhsm(Tcl_Interp *interp, JmSession *s, const char *cmd)
{
    char *home, *path = NULL, *server = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    PlatError perr;
    ProtoError err;
    uint8_t key[32];
    RoleHsm *hsm = NULL;
    RoleUhsm *u = NULL;
    JmSettings st;
    int rc = TCL_ERROR;

    if (s->uhsm != NULL) {
	return TCL_OK;
    }
    memset(&st, 0, sizeof(st));
    if ((home = plat_spps_home()) == NULL) {
	return Spps_Error(interp, "HSMPARAMS NONE", "%s: cannot find the spps "
		"state directory (set SPPS_HOME or HOME)", cmd);
    }
    path = plat_join(home, "jobmgr/settings");
    free(home);
    if (path == NULL || !plat_file_exists(path)) {
	Spps_Error(interp, "HSMPARAMS NONE", "%s: the U-HSM parameters are "
		"not set: run set_hsm_params first", cmd);
	goto done;
    }
    if (plat_read_file(path, JM_MAX_SETTINGS, &data, &len, &perr) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("HSMPARAMS CORRUPT {%s}", path),
		Tcl_ObjPrintf("%s: %s", cmd, perr.msg));
	goto done;
    }
    if (jm_settings_server(data, len, path, &server, &err) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("HSMPARAMS CORRUPT {%s}", path),
		Tcl_ObjPrintf("%s: the saved U-HSM parameters are damaged: %s "
			"(run set_hsm_params again)", cmd, err.msg));
	goto done;
    }
    if (role_hsm_open(server, &hsm, &err) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("UHSM ERROR {%s}", server),
		Tcl_ObjPrintf("%s: cannot open U-HSM '%s': %s", cmd, server,
			err.msg));
	goto done;
    }
    switch (role_uhsm_open(hsm, &u, &err)) {
    case 1:
	break;
    case 0:
	Spps_ErrorObj(interp, Tcl_ObjPrintf("HSMPARAMS NONE {%s}", server),
		Tcl_ObjPrintf("%s: U-HSM '%s' is not provisioned: run "
			"set_hsm_params with its UUIDs", cmd, server));
	goto done;
    default:
	Spps_ErrorObj(interp, Tcl_ObjPrintf("UHSM ERROR {%s}", server),
		Tcl_ObjPrintf("%s: %s", cmd, err.msg));
	goto done;
    }
    if (role_mac_key(hsm, "jm settings v1", key, &err) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("UHSM ERROR {%s}", server),
		Tcl_ObjPrintf("%s: %s", cmd, err.msg));
	goto done;
    }
    if (jm_settings_read(data, len, path, key, &st, &err) != 0) {
	OPENSSL_cleanse(key, sizeof(key));
	Spps_ErrorObj(interp, Tcl_ObjPrintf("HSMPARAMS CORRUPT {%s}", path),
		Tcl_ObjPrintf("%s: the saved U-HSM parameters are damaged or "
			"were altered: %s (run set_hsm_params again)", cmd,
			err.msg));
	goto done;
    }
    OPENSSL_cleanse(key, sizeof(key));
    if (strcmp(st.uhsmUuid, role_uhsm_uuid(u)) != 0
	    || strcmp(st.masterUuid, role_uhsm_master_uuid(u)) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("HSMPARAMS MISMATCH {%s}", server),
		Tcl_ObjPrintf("%s: the saved parameters name U-HSM UUID %s and "
			"master key UUID %s, but U-HSM '%s' holds %s and %s", cmd,
			st.uhsmUuid, st.masterUuid, server, role_uhsm_uuid(u),
			role_uhsm_master_uuid(u)));
	goto done;
    }
    jm_settings_free(&s->settings);
    s->settings = st;
    memset(&st, 0, sizeof(st));
    s->hasSettings = 1;
    s->settingsLoaded = 1;
    s->hsm = hsm;
    s->uhsm = u;
    hsm = NULL;
    u = NULL;
    rc = TCL_OK;

  done:
    jm_settings_free(&st);
    if (u != NULL) {
	role_uhsm_close(u);
    }
    if (hsm != NULL) {
	role_hsm_close(hsm);
    }
    free(server);
    free(data);
    free(path);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Project persistence                                                  */
/* ------------------------------------------------------------------ */

/* The MAC key of project files, from the U-HSM. */
static int
ProjectKey(Tcl_Interp *interp, JmSession *s, const char *cmd, uint8_t key[32])
{
    ProtoError err;

    if (JmRequireUhsm(interp, s, cmd) != TCL_OK) {
	return TCL_ERROR;
    }
    if (role_mac_key(s->hsm, "jm project v1", key, &err) != 0) {
	return Spps_Error(interp, "UHSM ERROR", "%s: %s", cmd, err.msg);
    }
    return TCL_OK;
}

/*
 * WriteProject --
 *	Writes a project file with the U-HSM's MAC key (cleansed at once).
 */
static int
WriteProject(Tcl_Interp *interp, JmSession *s, const JmProject *p,
	const char *path, const char *cmd)
{
    uint8_t key[32], *image = NULL;
    size_t len = 0;
    ProtoError err;
    int rc;

    if (ProjectKey(interp, s, cmd, key) != TCL_OK) {
	return TCL_ERROR;
    }
    rc = jm_project_write(p, key, &image, &len, &err);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != 0) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("PROJECT IO {%s}", path),
		Tcl_ObjPrintf("%s: %s", cmd, err.msg));
    }
    rc = JmWriteFile(interp, path, image, len, 0600);
    free(image);
    return rc;
}

/*
 * JmSaveProject --
 *	Saves the open project and marks it clean.
 */
int
JmSaveProject(Tcl_Interp *interp, JmSession *s)
{
    if (WriteProject(interp, s, s->project, s->projectPath, "save_project")
	    != TCL_OK) {
	return TCL_ERROR;
    }
    s->dirty = 0;
    return TCL_OK;
}

/*
 * LockProject --
 *	Takes <path>.lock for this session and writes our pid into
 *	<path>.owner, so that a refused second opener can name the holder.
 */
static int
LockProject(Tcl_Interp *interp, JmSession *s, const char *path,
	const char *cmd)
{
    Tcl_Obj *lockPath = Tcl_ObjPrintf("%s.lock", path);
    Tcl_Obj *ownerPath = Tcl_ObjPrintf("%s.owner", path);
    PlatError perr;
    PlatLock lock;
    int rc, result = TCL_ERROR;
    char pid[64];

    Tcl_IncrRefCount(lockPath);
    Tcl_IncrRefCount(ownerPath);
    lock.handle = -1;
    rc = plat_lock_try(Tcl_GetString(lockPath), &lock, &perr);
    if (rc == 1) {
	uint8_t *data = NULL;
	size_t len = 0;
	char holder[64] = "another process";

	if (plat_read_file(Tcl_GetString(ownerPath), 63, &data, &len,
		&perr) == 0) {
	    snprintf(holder, sizeof(holder), "%s", (char *) data);
	    free(data);
	}
	Spps_ErrorObj(interp, Tcl_ObjPrintf("PROJECT LOCKED {%s} {%s}", path,
		holder), Tcl_ObjPrintf("%s: project '%s' is open in %s: close "
		"it there first", cmd, path, holder));
	goto done;
    }
    if (rc != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("PROJECT IO {%s}", path),
		Tcl_ObjPrintf("%s: cannot lock project '%s': %s", cmd, path,
			perr.msg));
	goto done;
    }
    snprintf(pid, sizeof(pid), "process %ld", plat_pid());
    if (plat_write_file_durable(Tcl_GetString(ownerPath), pid, strlen(pid),
	    0600, &perr) != 0) {
	plat_unlock(&lock);
	Spps_ErrorObj(interp, Tcl_ObjPrintf("PROJECT IO {%s}", path),
		Tcl_ObjPrintf("%s: %s", cmd, perr.msg));
	goto done;
    }
    s->lock = lock;
    result = TCL_OK;

  done:
    Tcl_DecrRefCount(lockPath);
    Tcl_DecrRefCount(ownerPath);
    return result;
}

/* ------------------------------------------------------------------ */
/* Project commands                                                     */
/* ------------------------------------------------------------------ */

static int
RefuseOpen(Tcl_Interp *interp, JmSession *s, const char *cmd)
{
    if (s->project != NULL) {
	return Spps_ErrorObj(interp,
		Tcl_ObjPrintf("PROJECT OPEN {%s}", s->project->name),
		Tcl_ObjPrintf("%s: project '%s' is open: close it first "
			"(close_project -save TRUE or FALSE)", cmd,
			s->project->name));
    }
    return TCL_OK;
}

/*
 * new_project -location dir -name name
 *	Creates <location>/<name>/<name>.jprj, saves it, and opens it.
 */
static int
NewProjectObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"location", SPPS_OPT_STRING, 1, NULL, NULL},
	{"name", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    static const char usage[] = "new_project -location \"location\" "
	    "-name \"name\"";
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[2];
    char *location = NULL, *dir = NULL, *path = NULL;
    const char *name;
    JmProject *p = NULL;
    PlatError perr;
    int rc = TCL_ERROR;

    (void) cd;
    if (JM_PARSE(interp, usage, opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    name = Tcl_GetString(v[1]);
    if (RefuseOpen(interp, s, "new_project") != TCL_OK
	    || JmCheckName(interp, "name", v[1]) != TCL_OK) {
	goto done;
    }
    if (strpbrk(name, "/\\:*?\"<>|") != NULL || strcmp(name, ".") == 0
	    || strcmp(name, "..") == 0) {
	Spps_ErrorObj(interp, Tcl_NewStringObj("OPTION VALUE name", -1),
		Tcl_ObjPrintf("Parameter 'name' has illegal value. A project "
			"name is a file name: '%s' is not.", name));
	goto done;
    }
    if (JmRequireUhsm(interp, s, "new_project") != TCL_OK) {
	goto done;
    }
    location = JmNormalizePath(interp, Tcl_GetString(v[0]));
    dir = Tcl_Alloc((unsigned) (strlen(location) + strlen(name) + 2));
    sprintf(dir, "%s/%s", location, name);
    path = Tcl_Alloc((unsigned) (strlen(dir) + strlen(name) + 7));
    sprintf(path, "%s/%s.jprj", dir, name);
    if (plat_file_exists(path)) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("PROJECT EXISTS {%s}", path),
		Tcl_ObjPrintf("new_project: project '%s' already exists "
			"(open_project -project {%s})", path, path));
	goto done;
    }
    if (plat_file_exists(location) && !plat_is_dir(location)) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE IO {%s}", location),
		Tcl_ObjPrintf("Parameter 'location' : '%s' is not a "
			"directory.", location));
	goto done;
    }
    if (plat_mkdirs(dir, 0700, &perr) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE IO {%s}", dir),
		Tcl_ObjPrintf("new_project: %s", perr.msg));
	goto done;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL
	    || (p->name = jm_strdup(name)) == NULL) {
	Spps_Error(interp, "PROJECT IO", "new_project: out of memory");
	goto done;
    }
    p->created = (uint64_t) time(NULL);
    snprintf(p->uhsmUuid, sizeof(p->uhsmUuid), "%s", role_uhsm_uuid(s->uhsm));
    if (LockProject(interp, s, path, "new_project") != TCL_OK) {
	goto done;
    }
    if (WriteProject(interp, s, p, path, "new_project") != TCL_OK) {
	plat_unlock(&s->lock);
	s->lock.handle = -1;
	goto done;
    }
    s->project = p;
    s->projectPath = path;
    s->dirty = 0;
    p = NULL;
    path = NULL;
    Spps_Log(interp, "Created project '%s' in '%s'.", name, dir);
    Spps_Log(interp, "Opened '%s'", s->projectPath);
    Spps_LogSucceeded(interp, "new_project");
    Tcl_SetObjResult(interp, Tcl_NewStringObj(s->projectPath, -1));
    rc = TCL_OK;

  done:
    if (p != NULL) {
	jm_project_free(p);
	free(p);
    }
    if (location != NULL) {
	Tcl_Free(location);
    }
    if (dir != NULL) {
	Tcl_Free(dir);
    }
    if (path != NULL) {
	Tcl_Free(path);
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * open_project -project path.jprj
 */
static int
OpenProjectObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"project", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    static const char usage[] = "open_project -project \"project file\"";
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[1];
    char *path = NULL;
    uint8_t *data = NULL, key[32];
    size_t len = 0;
    JmProject *p = NULL;
    ProtoError err;
    int rc = TCL_ERROR, locked = 0;

    (void) cd;
    if (JM_PARSE(interp, usage, opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (RefuseOpen(interp, s, "open_project") != TCL_OK
	    || JmRequireUhsm(interp, s, "open_project") != TCL_OK) {
	goto done;
    }
    path = JmNormalizePath(interp, Tcl_GetString(v[0]));
    if (!plat_file_exists(path)) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("PROJECT NOTFOUND {%s}", path),
		Tcl_ObjPrintf("Parameter 'project' : the file '%s' does not "
			"exist.", path));
	goto done;
    }
    if (LockProject(interp, s, path, "open_project") != TCL_OK) {
	goto done;
    }
    locked = 1;
    if (JmReadFile(interp, "project", path, JM_MAX_PROJECT, &data, &len)
	    != TCL_OK || ProjectKey(interp, s, "open_project", key) != TCL_OK) {
	goto done;
    }
    if ((p = calloc(1, sizeof(*p))) == NULL) {
	Spps_Error(interp, "PROJECT IO", "open_project: out of memory");
	goto done;
    }
    rc = jm_project_read(data, len, path, key, p, &err);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != 0) {
	rc = TCL_ERROR;
	Spps_ErrorObj(interp, Tcl_ObjPrintf("PROJECT CORRUPT {%s}", path),
		Tcl_ObjPrintf("open_project: %s (a project file that is "
			"damaged, truncated or altered, or that another U-HSM "
			"wrote, is refused; this one is U-HSM '%s', UUID %s)",
			err.msg, s->settings.server, role_uhsm_uuid(s->uhsm)));
	goto done;
    }
    s->project = p;
    s->projectPath = path;
    s->dirty = 0;
    p = NULL;
    path = NULL;
    locked = 0;
    Spps_Log(interp, "Opened '%s'", s->projectPath);
    Spps_LogSucceeded(interp, "open_project");
    Tcl_SetObjResult(interp, Tcl_NewStringObj(s->projectPath, -1));
    rc = TCL_OK;

  done:
    if (locked) {
	plat_unlock(&s->lock);
	s->lock.handle = -1;
    }
    if (p != NULL) {
	jm_project_free(p);
	free(p);
    }
    free(data);
    if (path != NULL) {
	Tcl_Free(path);
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * save_project
 */
static int
SaveProjectObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {{NULL, 0, 0, NULL, NULL}};
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[1];

    (void) cd;
    if (JM_PARSE(interp, "save_project", opts, objc, objv, v) != TCL_OK
	    || JmRequireProject(interp, s, "save_project") != TCL_OK
	    || JmSaveProject(interp, s) != TCL_OK) {
	return TCL_ERROR;
    }
    Spps_Log(interp, "Saved '%s'", s->projectPath);
    Spps_LogSucceeded(interp, "save_project");
    return TCL_OK;
}

/*
 * close_project ?-save TRUE|FALSE?
 *	Without -save, a project with unsaved changes is not closed: the
 *	caller says whether to keep them.
 */
static int
CloseProjectObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"save", SPPS_OPT_BOOL, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[1];
    int save = -1;
    char *path;

    (void) cd;
    if (JM_PARSE(interp, "close_project [-save \"TRUE | FALSE\"]", opts, objc,
	    objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (v[0] != NULL) {
	Tcl_GetBooleanFromObj(NULL, v[0], &save);
    }
    Spps_FreeOptionValues(opts, v);
    if (JmRequireProject(interp, s, "close_project") != TCL_OK) {
	return TCL_ERROR;
    }
    if (save < 0 && s->dirty) {
	return Spps_ErrorObj(interp,
		Tcl_ObjPrintf("PROJECT UNSAVED {%s}", s->project->name),
		Tcl_ObjPrintf("close_project: project '%s' has unsaved changes: "
			"give -save TRUE to keep them or -save FALSE to drop "
			"them", s->project->name));
    }
    if (save == 1 && JmSaveProject(interp, s) != TCL_OK) {
	return TCL_ERROR;
    }
    path = Tcl_Alloc((unsigned) strlen(s->projectPath) + 1);
    strcpy(path, s->projectPath);
    if (save == 1) {
	Spps_Log(interp, "Saved '%s'", path);
    } else if (s->dirty) {
	Spps_Log(interp, "Changes to '%s' since it was last saved were "
		"discarded.", path);
    }
    CloseProject(s);
    Spps_Log(interp, "Closed '%s'", path);
    Tcl_Free(path);
    Spps_LogSucceeded(interp, "close_project");
    return TCL_OK;
}

/*
 * get_software_info ?-version?
 */
static int
GetSoftwareInfoObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"version", SPPS_OPT_FLAG, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    Tcl_Obj *v[1];
    int versionOnly = 0;

    (void) cd;
    if (JM_PARSE(interp, "get_software_info [-version]", opts, objc, objv, v)
	    != TCL_OK) {
	return TCL_ERROR;
    }
    if (v[0] != NULL) {
	Tcl_GetBooleanFromObj(NULL, v[0], &versionOnly);
    }
    Spps_FreeOptionValues(opts, v);
    if (versionOnly) {
	Spps_Log(interp, "Version: %s", PACKAGE_VERSION);
	Tcl_SetObjResult(interp, Tcl_NewStringObj(PACKAGE_VERSION, -1));
    } else {
	Spps_Log(interp, "Programming Job Manager (spps, an open "
		"implementation of SPPS)");
	Spps_Log(interp, "Version: %s", PACKAGE_VERSION);
	Spps_Log(interp, "Tcl %s", Tcl_GetVar(interp, "tcl_patchLevel",
		TCL_GLOBAL_ONLY) ? Tcl_GetVar(interp, "tcl_patchLevel",
		TCL_GLOBAL_ONLY) : "?");
	Tcl_SetObjResult(interp, Tcl_ObjPrintf("tool {Programming Job Manager} "
		"implementation spps version %s", PACKAGE_VERSION));
    }
    Spps_LogSucceeded(interp, "get_software_info");
    return TCL_OK;
}

const JmCommand jmProjectCommands[] = {
    {"close_project", CloseProjectObjCmd},
    {"get_software_info", GetSoftwareInfoObjCmd},
    {"new_project", NewProjectObjCmd},
    {"open_project", OpenProjectObjCmd},
    {"save_project", SaveProjectObjCmd},
    {NULL, NULL}
};

/* ------------------------------------------------------------------ */
/* Registration                                                         */
/* ------------------------------------------------------------------ */

/*
 * SppsJobmgr_Init --
 *	Defines the Job Manager commands in the global namespace.  The
 *	FlashPro Express command set defines commands of the same names
 *	(set_hsm_params, open_project...): the two cannot share an
 *	interpreter, and the second to come is refused.
 */
int
SppsJobmgr_Init(Tcl_Interp *interp)
{
    static const JmCommand *const tables[] = {
	jmProjectCommands, jmHsmCommands, jmDataCommands, jmJobCommands,
	jmTaskCommands, NULL
    };
    int t, i;

    if (Tcl_PkgPresent(interp, "fpexpress", NULL, 0) != NULL) {
	Tcl_ResetResult(interp);
	return Spps_Error(interp, "PACKAGE CONFLICT fpexpress", "the Job "
		"Manager commands (package jobmgr) cannot be loaded into an "
		"interpreter that has the FlashPro Express commands (package "
		"fpexpress): both define set_hsm_params, open_project and "
		"close_project.  Use one interpreter per tool (interp create).");
    }
    Tcl_ResetResult(interp);
    JmGetSession(interp);
    for (t = 0; tables[t] != NULL; t++) {
	for (i = 0; tables[t][i].name != NULL; i++) {
	    Tcl_Obj *name = Tcl_ObjPrintf("::%s", tables[t][i].name);

	    Tcl_IncrRefCount(name);
	    Tcl_CreateObjCommand(interp, Tcl_GetString(name), tables[t][i].proc,
		    NULL, NULL);
	    Tcl_DecrRefCount(name);
	}
    }
    return TCL_OK;
}
