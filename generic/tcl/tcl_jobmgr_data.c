/*
 * tcl_jobmgr_data.c --
 *
 *	Programming Data entries of a Job Manager project (doc/jobmgr.n):
 *	new_prog_data, remove_prog_data, set_envm_update, set_snvm_update,
 *	remove_envm_update, remove_snvm_update, init_bitstream,
 *	remove_bitstream, list_prog_data, get_prog_data_info.
 *
 *	new_prog_data copies the JDC into the project (the file is not used
 *	afterwards); giving a keyset puts the entry in the HSM flow, whose
 *	bitstreams the U-HSM encrypts at export_hsmtask.  Every command
 *	checks everything before it changes the project, so a refusal leaves
 *	it exactly as it was.
 */

#include "tcl_jobmgr.h"
#include "sim/sim_factory.h"

#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* Shared lookups                                                       */
/* ------------------------------------------------------------------ */

static int
FindData(Tcl_Interp *interp, JmSession *s, const char *cmd, const char *name,
	JmProgData **d)
{
    *d = jm_find_data(s->project, name);
    if (*d == NULL) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("DATA UNKNOWN {%s}", name),
		Tcl_ObjPrintf("%s: programming data '%s' does not exist in "
			"project '%s'", cmd, name, s->project->name));
    }
    return TCL_OK;
}

/* Decodes the JDC a programming data entry holds (checked at import). */
static int
DataJdc(Tcl_Interp *interp, const char *cmd, const JmProgData *d, JmJdc *jdc)
{
    ProtoError err;

    if (jm_jdc_read(d->jdc, d->jdcLen, d->name, jdc, &err) != 0) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("JDC CORRUPT {%s}", d->name),
		Tcl_ObjPrintf("%s: the design of programming data '%s': %s",
			cmd, d->name, err.msg));
    }
    return TCL_OK;
}

/*
 * FindClient --
 *	The client of that name, or NULL.
 */
static const JmClient *
FindClient(const JmClient *c, size_t n, const char *name)
{
    size_t i;

    for (i = 0; i < n; i++) {
	if (strcmp(c[i].name, name) == 0) {
	    return &c[i];
	}
    }
    return NULL;
}

/* The device and job that use a bitstream (or any of a data's), if any. */
static int
FindUser(const JmProject *p, const char *dataName, const char *bsName,
	const JmJob **job, const JmDevice **dev)
{
    size_t i, k;

    for (i = 0; i < p->nJobs; i++) {
	for (k = 0; k < p->jobs[i].nDevices; k++) {
	    const JmDevice *d = &p->jobs[i].devices[k];

	    if (strcmp(d->dataName, dataName) == 0
		    && (bsName == NULL || strcmp(d->bitstreamName, bsName) == 0)) {
		*job = &p->jobs[i];
		*dev = d;
		return 1;
	    }
	}
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* new_prog_data, remove_prog_data                                      */
/* ------------------------------------------------------------------ */

static Tcl_Obj *
ComponentsObj(int bits)
{
    char buf[64];

    jm_features_format(bits, buf, sizeof(buf));
    return Tcl_NewStringObj(buf[0] ? buf : "(none)", -1);
}

/*
 * new_prog_data -data_name name -import_file file.jdc ?-keyset_file name?
 */
static int
NewProgDataObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"data_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"import_file", SPPS_OPT_STRING, 1, NULL, NULL},
	{"keyset_file", SPPS_OPT_STRING, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    static const char usage[] = "new_prog_data -data_name \"name\" "
	    "-import_file \"jdc file\" [-keyset_file \"keyset file name\"]";
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[3];
    const char *name;
    char *jdcPath = NULL, *ksPath = NULL;
    uint8_t *jdcImage = NULL, *ksImage = NULL;
    size_t jdcLen = 0, ksLen = 0;
    JmJdc jdc;
    JmKeyset ksHdr;
    JmProgData *d;
    ProtoError err;
    RoleFail why;
    const char *family;
    int rc = TCL_ERROR;

    (void) cd;
    memset(&jdc, 0, sizeof(jdc));
    memset(&ksHdr, 0, sizeof(ksHdr));
    if (JM_PARSE(interp, usage, opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    name = Tcl_GetString(v[0]);
    if (JmRequireProject(interp, s, "new_prog_data") != TCL_OK
	    || JmCheckName(interp, "data_name", v[0]) != TCL_OK) {
	goto done;
    }
    if (jm_find_data(s->project, name) != NULL) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("DATA DUPLICATE {%s}", name),
		Tcl_ObjPrintf("new_prog_data: programming data '%s' already "
			"exists in project '%s'", name, s->project->name));
	goto done;
    }
    jdcPath = JmNormalizePath(interp, Tcl_GetString(v[1]));
    if (JmReadFile(interp, "import_file", jdcPath, JM_MAX_JDC, &jdcImage,
	    &jdcLen) != TCL_OK) {
	goto done;
    }
    if (jm_jdc_read(jdcImage, jdcLen, jdcPath, &jdc, &err) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("JDC CORRUPT {%s}", jdcPath),
		Tcl_ObjPrintf("new_prog_data: %s", err.msg));
	goto done;
    }
    family = sim_die_family(jdc.die);
    if (family == NULL || strcmp(family, jdc.family) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("JDC DIE {%s}", jdc.die),
		Tcl_ObjPrintf("new_prog_data: JDC '%s' is for die '%s' of family "
			"'%s', which spps does not know", jdcPath, jdc.die,
			jdc.family));
	goto done;
    }
    if (v[2] != NULL) {
	if (JmRequireKeysetDir(interp, s, "new_prog_data") != TCL_OK
		|| JmKeysetPath(interp, s, "keyset_file", v[2], &ksPath)
		    != TCL_OK
		|| JmReadFile(interp, "keyset_file", ksPath, JM_MAX_KEYSET,
			&ksImage, &ksLen) != TCL_OK) {
	    goto done;
	}
	if (role_uhsm_keyset_check(s->uhsm, ksImage, ksLen, ksPath, &ksHdr,
		&why, &err) != 0) {
	    JmRoleError(interp, "KEYSET", why, Tcl_GetString(v[2]), &err);
	    goto done;
	}
    }
    if ((d = JmGrow((void **) &s->project->data, &s->project->nData,
	    sizeof(JmProgData))) == NULL) {
	Spps_Error(interp, "PROJECT IO", "new_prog_data: out of memory");
	goto done;
    }
    d->name = jm_strdup(name);
    d->jdcSource = jm_strdup(jdcPath);
    proto_sha384(jdcImage, jdcLen, d->jdcDigest);
    d->jdc = jdcImage;
    d->jdcLen = jdcLen;
    jdcImage = NULL;
    if (ksImage != NULL) {
	d->keysetName = jm_strdup(Tcl_GetString(v[2]));
	d->keyset = ksImage;
	d->keysetLen = ksLen;
	ksImage = NULL;
    }
    if (d->name == NULL || d->jdcSource == NULL
	    || (v[2] != NULL && d->keysetName == NULL)) {
	jm_prog_data_free(d);
	s->project->nData--;
	Spps_Error(interp, "PROJECT IO", "new_prog_data: out of memory");
	goto done;
    }
    s->dirty = 1;
    {
	Tcl_Obj *comp = ComponentsObj(jm_jdc_components(&jdc));

	Tcl_IncrRefCount(comp);
	Spps_Log(interp, "Programming data '%s' created from JDC '%s': design "
		"'%s', %s %s, components %s.", name, jdcPath, jdc.designName,
		jdc.family, jdc.die, Tcl_GetString(comp));
	Tcl_DecrRefCount(comp);
    }
    if (d->keysetName != NULL) {
	Spps_Log(interp, "Keyset '%s' (%s) is used: HSM flow.", d->keysetName,
		ksPath);
    } else {
	Spps_Log(interp, "No keyset: non-HSM flow.");
    }
    Spps_LogSucceeded(interp, "new_prog_data");
    rc = TCL_OK;

  done:
    jm_jdc_free(&jdc);
    jm_keyset_free(&ksHdr);
    free(jdcImage);
    free(ksImage);
    free(ksPath);
    if (jdcPath != NULL) {
	Tcl_Free(jdcPath);
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * remove_prog_data -data_name name
 */
static int
RemoveProgDataObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"data_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[1];
    JmProgData *d;
    const JmJob *job;
    const JmDevice *dev;
    int rc = TCL_ERROR;

    (void) cd;
    if (JM_PARSE(interp, "remove_prog_data -data_name \"name\"", opts, objc,
	    objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (JmRequireProject(interp, s, "remove_prog_data") != TCL_OK
	    || FindData(interp, s, "remove_prog_data", Tcl_GetString(v[0]), &d)
		!= TCL_OK) {
	goto done;
    }
    if (FindUser(s->project, d->name, NULL, &job, &dev)) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("DATA INUSE {%s}", d->name),
		Tcl_ObjPrintf("remove_prog_data: programming data '%s' is used "
			"by device '%s' of job '%s'", d->name, dev->name,
			job->name));
	goto done;
    }
    Spps_Log(interp, "Programming data '%s' removed.", d->name);
    jm_prog_data_free(d);
    JmRemoveAt(s->project->data, &s->project->nData, sizeof(JmProgData),
	    (size_t) (d - s->project->data));
    s->dirty = 1;
    Spps_LogSucceeded(interp, "remove_prog_data");
    rc = TCL_OK;

  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* eNVM and sNVM updates                                                */
/* ------------------------------------------------------------------ */

static int
HexNibbles(const char *p, int n, unsigned *out)
{
    int i, d;

    *out = 0;
    for (i = 0; i < n; i++) {
	if ((d = (p[i] >= '0' && p[i] <= '9') ? p[i] - '0'
		: (p[i] >= 'a' && p[i] <= 'f') ? p[i] - 'a' + 10
		: (p[i] >= 'A' && p[i] <= 'F') ? p[i] - 'A' + 10 : -1) < 0) {
	    return -1;
	}
	*out = (*out << 4) | (unsigned) d;
    }
    return 0;
}

/*
 * ParseIntelHex --
 *	An Intel HEX file (record types 00 data, 01 end, 02 and 04 address
 *	extensions, 03 and 05 start addresses, ignored) to the bytes from
 *	its lowest to its highest address, gaps filled with 0xFF (erased
 *	flash).  Every record's checksum is checked.
 */
static int
ParseIntelHex(Tcl_Interp *interp, const char *path, const uint8_t *text,
	size_t len, size_t max, uint8_t **out, size_t *outLen)
{
    typedef struct Chunk { uint64_t addr; uint8_t data[255]; unsigned n; } Chunk;
    Chunk *chunks = NULL;
    size_t nChunks = 0, line = 0, i;
    uint64_t base = 0, lo = UINT64_MAX, hi = 0;
    const char *p = (const char *) text, *end = p + len;
    uint8_t *img;
    int sawEnd = 0;

    *out = NULL;
    while (p < end && !sawEnd) {
	const char *eol = memchr(p, '\n', (size_t) (end - p));
	size_t n = eol ? (size_t) (eol - p) : (size_t) (end - p);
	unsigned cnt, addr, type, byte, sum = 0, k;
	Chunk *c;

	line++;
	while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == ' ')) {
	    n--;
	}
	if (n == 0) {
	    p += (eol ? (size_t) (eol - p) + 1 : n);
	    continue;
	}
	if (p[0] != ':' || n < 11 || (n - 1) % 2 != 0
		|| HexNibbles(p + 1, 2, &cnt) != 0 || n != 11 + 2 * cnt
		|| HexNibbles(p + 3, 4, &addr) != 0
		|| HexNibbles(p + 7, 2, &type) != 0) {
	    goto bad;
	}
	for (k = 0; k < (n - 1) / 2; k++) {
	    if (HexNibbles(p + 1 + 2 * k, 2, &byte) != 0) {
		goto bad;
	    }
	    sum += byte;
	}
	if ((sum & 0xFF) != 0) {
	    free(chunks);
	    return Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE FORMAT {%s}", path),
		    Tcl_ObjPrintf("Parameter 'file' : '%s' line %lu: checksum "
			    "error", path, (unsigned long) line));
	}
	switch (type) {
	case 0:
	    if ((c = JmGrow((void **) &chunks, &nChunks, sizeof(Chunk))) == NULL) {
		free(chunks);
		return Spps_Error(interp, "PROJECT IO", "out of memory");
	    }
	    c->addr = base + addr;
	    c->n = cnt;
	    for (k = 0; k < cnt; k++) {
		HexNibbles(p + 9 + 2 * k, 2, &byte);
		c->data[k] = (uint8_t) byte;
	    }
	    if (cnt > 0) {
		if (c->addr < lo) {
		    lo = c->addr;
		}
		if (c->addr + cnt > hi) {
		    hi = c->addr + cnt;
		}
	    }
	    break;
	case 1:
	    sawEnd = 1;
	    break;
	case 2:
	    if (cnt != 2 || HexNibbles(p + 9, 4, &byte) != 0) {
		goto bad;
	    }
	    base = (uint64_t) byte << 4;
	    break;
	case 4:
	    if (cnt != 2 || HexNibbles(p + 9, 4, &byte) != 0) {
		goto bad;
	    }
	    base = (uint64_t) byte << 16;
	    break;
	case 3:
	case 5:
	    break;
	default:
	    goto bad;
	}
	p += (eol ? (size_t) (eol - p) + 1 : n);
    }
    if (nChunks == 0 || lo == UINT64_MAX) {
	*outLen = 0;
	free(chunks);
	if ((*out = malloc(1)) == NULL) {
	    return Spps_Error(interp, "PROJECT IO", "out of memory");
	}
	return TCL_OK;
    }
    if (hi - lo > max) {
	free(chunks);
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("DATA SIZE {%s}", path),
		Tcl_ObjPrintf("Parameter 'file' : '%s' spans %lld bytes, more "
			"than the client's %lld", path, (long long) (hi - lo),
			(long long) max));
    }
    if ((img = malloc((size_t) (hi - lo))) == NULL) {
	free(chunks);
	return Spps_Error(interp, "PROJECT IO", "out of memory");
    }
    memset(img, 0xFF, (size_t) (hi - lo));
    for (i = 0; i < nChunks; i++) {
	memcpy(img + (chunks[i].addr - lo), chunks[i].data, chunks[i].n);
    }
    free(chunks);
    *out = img;
    *outLen = (size_t) (hi - lo);
    return TCL_OK;

  bad:
    free(chunks);
    return Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE FORMAT {%s}", path),
	    Tcl_ObjPrintf("Parameter 'file' : '%s' line %lu is not an Intel "
		    "HEX record", path, (unsigned long) line));
}

/*
 * SetNvmUpdate --
 *	set_envm_update / set_snvm_update -data_name name -client_name client
 *	-file file ?-overwrite bool?
 *	The file is Intel HEX if its name ends in .hex, else raw bytes; the
 *	content may not be larger than the client.  -overwrite TRUE replaces
 *	an update already set for the client.
 */
static int
SetNvmUpdate(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[], int snvm)
{
    static const SppsOption opts[] = {
	{"data_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"client_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"file", SPPS_OPT_STRING, 1, NULL, NULL},
	{"overwrite", SPPS_OPT_BOOL, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    const char *cmd = snvm ? "set_snvm_update" : "set_envm_update";
    const char *kind = snvm ? "sNVM" : "eNVM";
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[4], *usage;
    JmProgData *d;
    JmJdc jdc;
    const JmClient *client;
    JmUpdate *updates, *u = NULL;
    size_t nUpdates, i;
    char *path = NULL;
    uint8_t *raw = NULL, *content = NULL;
    size_t rawLen = 0, contentLen = 0;
    int overwrite = 0, rc = TCL_ERROR;
    const char *clientName;

    memset(&jdc, 0, sizeof(jdc));
    usage = Tcl_ObjPrintf("%s -data_name \"name\" -client_name \"client\" "
	    "-file \"file\" [-overwrite \"TRUE | FALSE\"]", cmd);
    Tcl_IncrRefCount(usage);
    if (JM_PARSE(interp, Tcl_GetString(usage), opts, objc, objv, v) != TCL_OK) {
	Tcl_DecrRefCount(usage);
	return TCL_ERROR;
    }
    Tcl_DecrRefCount(usage);
    if (v[3] != NULL) {
	Tcl_GetBooleanFromObj(NULL, v[3], &overwrite);
    }
    clientName = Tcl_GetString(v[1]);
    if (JmRequireProject(interp, s, cmd) != TCL_OK
	    || FindData(interp, s, cmd, Tcl_GetString(v[0]), &d) != TCL_OK
	    || DataJdc(interp, cmd, d, &jdc) != TCL_OK) {
	goto done;
    }
    client = snvm ? FindClient(jdc.snvm, jdc.nSnvm, clientName)
	    : FindClient(jdc.envm, jdc.nEnvm, clientName);
    if (client == NULL) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("JDC CLIENT {%s}", clientName),
		Tcl_ObjPrintf("%s: the design of programming data '%s' has no "
			"%s client '%s'", cmd, d->name, kind, clientName));
	goto done;
    }
    updates = snvm ? d->snvmUpdates : d->envmUpdates;
    nUpdates = snvm ? d->nSnvmUpdates : d->nEnvmUpdates;
    for (i = 0; i < nUpdates; i++) {
	if (strcmp(updates[i].client, clientName) == 0) {
	    u = &updates[i];
	}
    }
    if (u != NULL && !overwrite) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("DATA EXISTS {%s}", clientName),
		Tcl_ObjPrintf("%s: %s client '%s' of programming data '%s' "
			"already has an update: give -overwrite TRUE to replace "
			"it", cmd, kind, clientName, d->name));
	goto done;
    }
    path = JmNormalizePath(interp, Tcl_GetString(v[2]));
    if (JmReadFile(interp, "file", path, JM_MAX_JDC, &raw, &rawLen) != TCL_OK) {
	goto done;
    }
    if (strlen(path) > 4 && strcasecmp(path + strlen(path) - 4, ".hex") == 0) {
	if (ParseIntelHex(interp, path, raw, rawLen, (size_t) client->size,
		&content, &contentLen) != TCL_OK) {
	    goto done;
	}
    } else {
	content = raw;
	contentLen = rawLen;
	raw = NULL;
    }
    if ((uint64_t) contentLen > client->size) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("DATA SIZE {%s}", clientName),
		Tcl_ObjPrintf("%s: '%s' holds %lld bytes; %s client '%s' has "
			"room for %lld", cmd, path, (long long) contentLen, kind,
			clientName, (long long) client->size));
	goto done;
    }
    if (u == NULL) {
	u = snvm ? JmGrow((void **) &d->snvmUpdates, &d->nSnvmUpdates,
		sizeof(JmUpdate))
		: JmGrow((void **) &d->envmUpdates, &d->nEnvmUpdates,
		sizeof(JmUpdate));
	if (u == NULL || (u->client = jm_strdup(clientName)) == NULL) {
	    if (u != NULL) {
		if (snvm) {
		    d->nSnvmUpdates--;
		} else {
		    d->nEnvmUpdates--;
		}
	    }
	    Spps_Error(interp, "PROJECT IO", "%s: out of memory", cmd);
	    goto done;
	}
    } else {
	free(u->data);
	free(u->source);
    }
    u->data = content;
    u->len = contentLen;
    u->source = jm_strdup(path);
    content = NULL;
    s->dirty = 1;
    Spps_Log(interp, "%s client '%s' of programming data '%s' updated with "
	    "%lu bytes from '%s'.", kind, clientName, d->name,
	    (unsigned long) u->len, path);
    Spps_LogSucceeded(interp, cmd);
    rc = TCL_OK;

  done:
    jm_jdc_free(&jdc);
    free(raw);
    free(content);
    if (path != NULL) {
	Tcl_Free(path);
    }
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * SetEnvmUpdateObjCmd --
 *	set_envm_update (SetNvmUpdate).
 */
static int
SetEnvmUpdateObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    (void) cd;
    return SetNvmUpdate(interp, objc, objv, 0);
}

/*
 * SetSnvmUpdateObjCmd --
 *	set_snvm_update (SetNvmUpdate).
 */
static int
SetSnvmUpdateObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    (void) cd;
    return SetNvmUpdate(interp, objc, objv, 1);
}

/*
 * RemoveNvmUpdate --
 *	remove_envm_update / remove_snvm_update -data_name -client_name.
 */
static int
RemoveNvmUpdate(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[], int snvm)
{
    static const SppsOption opts[] = {
	{"data_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"client_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    const char *cmd = snvm ? "remove_snvm_update" : "remove_envm_update";
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[2];
    JmProgData *d;
    JmUpdate *updates;
    size_t *n, i;
    int rc = TCL_ERROR;

    if (JM_PARSE(interp, snvm ? "remove_snvm_update -data_name \"name\" "
	    "-client_name \"client\"" : "remove_envm_update -data_name "
	    "\"name\" -client_name \"client\"", opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (JmRequireProject(interp, s, cmd) != TCL_OK
	    || FindData(interp, s, cmd, Tcl_GetString(v[0]), &d) != TCL_OK) {
	goto done;
    }
    updates = snvm ? d->snvmUpdates : d->envmUpdates;
    n = snvm ? &d->nSnvmUpdates : &d->nEnvmUpdates;
    for (i = 0; i < *n; i++) {
	if (strcmp(updates[i].client, Tcl_GetString(v[1])) == 0) {
	    break;
	}
    }
    if (i == *n) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("DATA UNKNOWN {%s}",
		Tcl_GetString(v[1])), Tcl_ObjPrintf("%s: %s client '%s' of "
		"programming data '%s' has no update", cmd, snvm ? "sNVM"
		: "eNVM", Tcl_GetString(v[1]), d->name));
	goto done;
    }
    jm_update_free(&updates[i]);
    JmRemoveAt(updates, n, sizeof(JmUpdate), i);
    s->dirty = 1;
    Spps_Log(interp, "Update of client '%s' of programming data '%s' "
	    "removed.", Tcl_GetString(v[1]), d->name);
    Spps_LogSucceeded(interp, cmd);
    rc = TCL_OK;

  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * RemoveEnvmUpdateObjCmd --
 *	remove_envm_update (RemoveNvmUpdate).
 */
static int
RemoveEnvmUpdateObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    (void) cd;
    return RemoveNvmUpdate(interp, objc, objv, 0);
}

/*
 * RemoveSnvmUpdateObjCmd --
 *	remove_snvm_update (RemoveNvmUpdate).
 */
static int
RemoveSnvmUpdateObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    (void) cd;
    return RemoveNvmUpdate(interp, objc, objv, 1);
}

/* ------------------------------------------------------------------ */
/* init_bitstream, remove_bitstream                                     */
/* ------------------------------------------------------------------ */

static int
BitstreamError(Tcl_Interp *interp, const char *cond, const char *detail,
	const char *fmt, const char *a, const char *b)
{
    Tcl_Obj *msg = Tcl_ObjPrintf("init_bitstream: ");

    Tcl_AppendPrintfToObj(msg, fmt, a, b);
    return Spps_ErrorObj(interp, Tcl_ObjPrintf("BITSTREAM %s {%s}", cond,
	    detail), msg);
}

/* A list option into a malloc'ed string array (names checked). */
static int
ListToStrings(Tcl_Interp *interp, const char *opt, Tcl_Obj *value,
	char ***out, size_t *n)
{
    Tcl_Obj **elems;
    int count, i;

    *out = NULL;
    *n = 0;
    if (Tcl_ListObjGetElements(NULL, value, &count, &elems) != TCL_OK) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("OPTION VALUE %s", opt),
		Tcl_ObjPrintf("Parameter '%s' has illegal value. Give a list "
			"of names.", opt));
    }
    if (count == 0) {
	return TCL_OK;
    }
    if ((*out = calloc((size_t) count, sizeof(char *))) == NULL) {
	return Spps_Error(interp, "PROJECT IO", "out of memory");
    }
    for (i = 0; i < count; i++) {
	if (JmCheckName(interp, opt, elems[i]) != TCL_OK
		|| ((*out)[i] = jm_strdup(Tcl_GetString(elems[i]))) == NULL) {
	    size_t k;

	    for (k = 0; k < (size_t) i; k++) {
		free((*out)[k]);
	    }
	    free(*out);
	    *out = NULL;
	    return TCL_ERROR;
	}
    }
    *n = (size_t) count;
    return TCL_OK;
}

/*
 * init_bitstream -data_name name -bitstream_name name -bitstream_type type
 *	-features {SECURITY FABRIC ENVM SNVM} ?-use_protocol AUTH_CODE?
 *	?-auth_keymode DFK|KFP|KFPE? ?-generate_coc? ?-envm_clients {..}?
 *	?-per_device_keys {UEK1 UPK1 ..}?
 */
static int
InitBitstreamObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    enum {
	O_DATA, O_NAME, O_TYPE, O_FEATURES, O_PROTOCOL, O_KEYMODE, O_COC,
	O_ENVM, O_PERDEV
    };
    static const char *const types[] = {
	"MASTER", "UEK1", "UEK2", "UEK3", "TRUSTED_FACILITY", NULL
    };
    static const char *const protocols[] = {"AUTH_CODE", NULL};
    static const char *const modes[] = {"DFK", "KFP", "KFPE", NULL};
    static const SppsOption opts[] = {
	{"data_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"bitstream_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"bitstream_type", SPPS_OPT_ENUM, 1, types, NULL},
	{"features", SPPS_OPT_STRING, 1, NULL, NULL},
	{"use_protocol", SPPS_OPT_ENUM, 0, protocols, NULL},
	{"auth_keymode", SPPS_OPT_ENUM, 0, modes, NULL},
	{"generate_coc", SPPS_OPT_FLAG, 0, NULL, NULL},
	{"envm_clients", SPPS_OPT_STRING, 0, NULL, NULL},
	{"per_device_keys", SPPS_OPT_STRING, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    static const char usage[] = "init_bitstream -data_name \"name\" "
	    "-bitstream_name \"name\" -bitstream_type \"MASTER | UEK1 | UEK2 | "
	    "UEK3 | TRUSTED_FACILITY\" -features \"SECURITY FABRIC ENVM SNVM\" "
	    "[-use_protocol \"AUTH_CODE\"] [-auth_keymode \"DFK | KFP | KFPE\"] "
	    "[-generate_coc] [-envm_clients \"clients\"] [-per_device_keys "
	    "\"keys\"]";
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[9];
    JmProgData *d;
    JmBitstreamDef bs, *slot;
    JmJdc jdc;
    JmKeyset ksHdr;
    ProtoError err;
    const char *type, *bsName;
    int features, jdcFeatures, hsmFlow, coc = 0, rc = TCL_ERROR;
    size_t i, k;
    char featText[64];

    (void) cd;
    memset(&bs, 0, sizeof(bs));
    memset(&jdc, 0, sizeof(jdc));
    memset(&ksHdr, 0, sizeof(ksHdr));
    if (JM_PARSE(interp, usage, opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    type = Tcl_GetString(v[O_TYPE]);
    bsName = Tcl_GetString(v[O_NAME]);
    if (v[O_COC] != NULL) {
	Tcl_GetBooleanFromObj(NULL, v[O_COC], &coc);
    }
    if (jm_features_parse(Tcl_GetString(v[O_FEATURES]), &features, &err) != 0) {
	/* The reference's sentence, then why as a sentence of its own. */
	if (err.msg[0] >= 'a' && err.msg[0] <= 'z') {
	    err.msg[0] = (char) (err.msg[0] - 'a' + 'A');
	}
	Spps_ErrorObj(interp, Tcl_NewStringObj("OPTION VALUE features", -1),
		Tcl_ObjPrintf("Parameter 'features' has illegal value. %s.",
			err.msg));
	goto done;
    }
    if (JmRequireProject(interp, s, "init_bitstream") != TCL_OK
	    || JmCheckName(interp, "bitstream_name", v[O_NAME]) != TCL_OK
	    || FindData(interp, s, "init_bitstream", Tcl_GetString(v[O_DATA]),
		    &d) != TCL_OK
	    || DataJdc(interp, "init_bitstream", d, &jdc) != TCL_OK) {
	goto done;
    }
    if (jm_find_bitstream(d, bsName) != NULL) {
	BitstreamError(interp, "DUPLICATE", bsName, "bitstream '%s' already "
		"exists in programming data '%s' (remove_bitstream first)",
		bsName, d->name);
	goto done;
    }
    hsmFlow = d->keysetName != NULL;
    jdcFeatures = jm_jdc_components(&jdc);
    for (i = 1; i <= 8; i <<= 1) {
	if ((features & (int) i) && !(jdcFeatures & (int) i)) {
	    Tcl_Obj *avail = ComponentsObj(jdcFeatures);

	    jm_features_format((int) i, featText, sizeof(featText));
	    Tcl_IncrRefCount(avail);
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("JDC FEATURE %s", featText),
		    Tcl_ObjPrintf("init_bitstream: feature %s: the design of "
			    "programming data '%s' has no such component (it "
			    "has %s)", featText, d->name, Tcl_GetString(avail)));
	    Tcl_DecrRefCount(avail);
	    goto done;
	}
    }
    /* The bitstream type and the flow. */
    if (strcmp(type, "MASTER") == 0 && !(features & JM_FEATURE_SECURITY)) {
	BitstreamError(interp, "FEATURES", bsName, "a MASTER bitstream "
		"programs the initial security: -features must include "
		"SECURITY%s%s", "", "");
	goto done;
    }
    if (strncmp(type, "UEK", 3) == 0 && (features & JM_FEATURE_SECURITY)) {
	BitstreamError(interp, "FEATURES", bsName, "a %s update bitstream "
		"updates fabric and memories of programmed devices: SECURITY "
		"is not one of its features%s", type, "");
	goto done;
    }
    if (hsmFlow) {
	if (strcmp(type, "TRUSTED_FACILITY") == 0) {
	    BitstreamError(interp, "TYPE", bsName, "TRUSTED_FACILITY "
		    "bitstreams belong to the non-HSM flow; programming data "
		    "'%s' has keyset '%s' (HSM flow)", d->name, d->keysetName);
	    goto done;
	}
	if (v[O_KEYMODE] == NULL) {
	    Spps_Error(interp, "OPTION MISSING auth_keymode", "init_bitstream: "
		    "the Authorization Code protocol of the HSM flow needs "
		    "-auth_keymode DFK, KFP or KFPE.");
	    goto done;
	}
	if (strcmp(Tcl_GetString(v[O_KEYMODE]), "DFK") != 0
		&& !sim_die_has_kfp(jdc.die)) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("BITSTREAM KEYMODE %s",
		    Tcl_GetString(v[O_KEYMODE])), Tcl_ObjPrintf("init_bitstream: "
		    "key mode %s needs a device with a factory key pair (KFP); "
		    "die %s has none: use DFK", Tcl_GetString(v[O_KEYMODE]),
		    jdc.die));
	    goto done;
	}
    } else {
	const char *flowOnly = v[O_PROTOCOL] ? "-use_protocol"
		: v[O_KEYMODE] ? "-auth_keymode" : coc ? "-generate_coc"
		: v[O_PERDEV] ? "-per_device_keys" : NULL;

	if (flowOnly != NULL) {
	    BitstreamError(interp, "FLOW", bsName, "%s belongs to the HSM flow; "
		    "programming data '%s' has no keyset (non-HSM flow)",
		    flowOnly, d->name);
	    goto done;
	}
    }
    bs.features = features;
    bs.generateCoc = coc;
    bs.name = jm_strdup(bsName);
    bs.type = jm_strdup(type);
    bs.protocol = jm_strdup(hsmFlow ? "AUTH_CODE" : "");
    bs.keyMode = jm_strdup(hsmFlow ? Tcl_GetString(v[O_KEYMODE]) : "");
    if (bs.name == NULL || bs.type == NULL || bs.protocol == NULL
	    || bs.keyMode == NULL) {
	Spps_Error(interp, "PROJECT IO", "init_bitstream: out of memory");
	goto done;
    }
    if (v[O_ENVM] != NULL) {
	if (!(features & JM_FEATURE_ENVM)) {
	    BitstreamError(interp, "FEATURES", bsName, "-envm_clients chooses "
		    "eNVM clients: -features must include ENVM%s%s", "", "");
	    goto done;
	}
	if (ListToStrings(interp, "envm_clients", v[O_ENVM], &bs.envmClients,
		&bs.nEnvmClients) != TCL_OK) {
	    goto done;
	}
	for (i = 0; i < bs.nEnvmClients; i++) {
	    if (FindClient(jdc.envm, jdc.nEnvm, bs.envmClients[i]) == NULL) {
		Spps_ErrorObj(interp, Tcl_ObjPrintf("JDC CLIENT {%s}",
			bs.envmClients[i]), Tcl_ObjPrintf("init_bitstream: the "
			"design of programming data '%s' has no eNVM client "
			"'%s'", d->name, bs.envmClients[i]));
		goto done;
	    }
	    for (k = 0; k < i; k++) {
		if (strcmp(bs.envmClients[k], bs.envmClients[i]) == 0) {
		    Spps_ErrorObj(interp, Tcl_NewStringObj(
			    "OPTION VALUE envm_clients", -1), Tcl_ObjPrintf(
			    "Parameter 'envm_clients' has illegal value. "
			    "Client '%s' is given twice.", bs.envmClients[i]));
		    goto done;
		}
	    }
	}
    }
    if (v[O_PERDEV] != NULL) {
	if (strcmp(type, "MASTER") != 0) {
	    BitstreamError(interp, "FEATURES", bsName, "per-device keys are "
		    "loaded by a MASTER bitstream with SECURITY, not by %s%s",
		    type, "");
	    goto done;
	}
	if (ListToStrings(interp, "per_device_keys", v[O_PERDEV], &bs.perDevice,
		&bs.nPerDevice) != TCL_OK) {
	    goto done;
	}
	if (jm_keyset_read(d->keyset, d->keysetLen, d->keysetName, &ksHdr,
		&err) != 0) {
	    Spps_ErrorObj(interp, Tcl_ObjPrintf("KEYSET CORRUPT {%s}",
		    d->keysetName), Tcl_ObjPrintf("init_bitstream: %s", err.msg));
	    goto done;
	}
	for (i = 0; i < bs.nPerDevice; i++) {
	    int idx = jm_key_index(bs.perDevice[i]), found = 0;

	    if (idx < 1 || idx > 6) {
		Spps_ErrorObj(interp, Tcl_NewStringObj(
			"OPTION VALUE per_device_keys", -1), Tcl_ObjPrintf(
			"Parameter 'per_device_keys' has illegal value. Key '%s' "
			"has no per-device form (expecting UEK1, UEK2, UEK3, "
			"UPK1, UPK2 or DPK).",
			bs.perDevice[i]));
		goto done;
	    }
	    free(bs.perDevice[i]);
	    bs.perDevice[i] = jm_strdup(jm_key_names[idx]);
	    for (k = 0; k < ksHdr.nNames; k++) {
		if (strcmp(ksHdr.names[k], jm_key_names[idx + 6]) == 0) {
		    found = 1;
		}
	    }
	    if (!found) {
		Spps_ErrorObj(interp, Tcl_ObjPrintf("KEYSET NOBASE {%s}",
			d->keysetName), Tcl_ObjPrintf("init_bitstream: keyset "
			"'%s' has no base key %s for per-device %s",
			d->keysetName, jm_key_names[idx + 6], jm_key_names[idx]));
		goto done;
	    }
	}
    }
    slot = JmGrow((void **) &d->bitstreams, &d->nBitstreams,
	    sizeof(JmBitstreamDef));
    if (slot == NULL) {
	Spps_Error(interp, "PROJECT IO", "init_bitstream: out of memory");
	goto done;
    }
    *slot = bs;
    memset(&bs, 0, sizeof(bs));
    s->dirty = 1;
    jm_features_format(features, featText, sizeof(featText));
    if (hsmFlow) {
	Spps_Log(interp, "Bitstream '%s' (%s, features %s) initialised in "
		"programming data '%s': Authorization Code protocol, key mode "
		"%s, CoC %s.", slot->name, slot->type, featText, d->name,
		slot->keyMode, coc ? "generated" : "not generated");
    } else {
	Spps_Log(interp, "Bitstream '%s' (%s, features %s) initialised in "
		"programming data '%s'.", slot->name, slot->type, featText,
		d->name);
    }
    Spps_LogSucceeded(interp, "init_bitstream");
    rc = TCL_OK;

  done:
    jm_bitstream_def_free(&bs);
    jm_jdc_free(&jdc);
    jm_keyset_free(&ksHdr);
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * remove_bitstream -data_name name -bitstream_name name
 */
static int
RemoveBitstreamObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"data_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{"bitstream_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[2];
    JmProgData *d;
    JmBitstreamDef *b;
    const JmJob *job;
    const JmDevice *dev;
    int rc = TCL_ERROR;

    (void) cd;
    if (JM_PARSE(interp, "remove_bitstream -data_name \"name\" "
	    "-bitstream_name \"name\"", opts, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (JmRequireProject(interp, s, "remove_bitstream") != TCL_OK
	    || FindData(interp, s, "remove_bitstream", Tcl_GetString(v[0]), &d)
		!= TCL_OK) {
	goto done;
    }
    if ((b = jm_find_bitstream(d, Tcl_GetString(v[1]))) == NULL) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("BITSTREAM UNKNOWN {%s}",
		Tcl_GetString(v[1])), Tcl_ObjPrintf("remove_bitstream: "
		"programming data '%s' has no bitstream '%s'", d->name,
		Tcl_GetString(v[1])));
	goto done;
    }
    if (FindUser(s->project, d->name, b->name, &job, &dev)) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("BITSTREAM INUSE {%s}", b->name),
		Tcl_ObjPrintf("remove_bitstream: bitstream '%s' is used by "
			"device '%s' of job '%s'", b->name, dev->name, job->name));
	goto done;
    }
    Spps_Log(interp, "Bitstream '%s' removed from programming data '%s'.",
	    b->name, d->name);
    jm_bitstream_def_free(b);
    JmRemoveAt(d->bitstreams, &d->nBitstreams, sizeof(JmBitstreamDef),
	    (size_t) (b - d->bitstreams));
    s->dirty = 1;
    Spps_LogSucceeded(interp, "remove_bitstream");
    rc = TCL_OK;

  done:
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/* ------------------------------------------------------------------ */
/* Listings                                                             */
/* ------------------------------------------------------------------ */

static Tcl_Obj *
StringsObj(char *const *list, size_t n)
{
    Tcl_Obj *l = Tcl_NewListObj(0, NULL);
    size_t i;

    for (i = 0; i < n; i++) {
	Tcl_ListObjAppendElement(NULL, l, Tcl_NewStringObj(list[i], -1));
    }
    return l;
}

/*
 * ListProgDataObjCmd --
 *	list_prog_data: the names of the programming data entries.
 */
static int
ListProgDataObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {{NULL, 0, 0, NULL, NULL}};
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[1], *l;
    size_t i;

    (void) cd;
    if (JM_PARSE(interp, "list_prog_data", opts, objc, objv, v) != TCL_OK
	    || JmRequireProject(interp, s, "list_prog_data") != TCL_OK) {
	return TCL_ERROR;
    }
    l = Tcl_NewListObj(0, NULL);
    for (i = 0; i < s->project->nData; i++) {
	Tcl_ListObjAppendElement(NULL, l,
		Tcl_NewStringObj(s->project->data[i].name, -1));
    }
    Tcl_SetObjResult(interp, l);
    return TCL_OK;
}

/*
 * ClientsObj --
 *	A flat list {name size ...} of clients.
 */
static Tcl_Obj *
ClientsObj(const JmClient *c, size_t n)
{
    Tcl_Obj *l = Tcl_NewListObj(0, NULL);
    size_t i;

    for (i = 0; i < n; i++) {
	Tcl_ListObjAppendElement(NULL, l, Tcl_NewStringObj(c[i].name, -1));
	Tcl_ListObjAppendElement(NULL, l, Tcl_NewWideIntObj(
		(Tcl_WideInt) c[i].size));
    }
    return l;
}

/*
 * UpdatesObj --
 *	A list of dicts describing updates.
 */
static Tcl_Obj *
UpdatesObj(const JmUpdate *u, size_t n)
{
    Tcl_Obj *l = Tcl_NewListObj(0, NULL);
    size_t i;

    for (i = 0; i < n; i++) {
	Tcl_Obj *d = Tcl_NewDictObj();

	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("client", -1),
		Tcl_NewStringObj(u[i].client, -1));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("size", -1),
		Tcl_NewWideIntObj((Tcl_WideInt) u[i].len));
	Tcl_DictObjPut(NULL, d, Tcl_NewStringObj("file", -1),
		Tcl_NewStringObj(u[i].source ? u[i].source : "", -1));
	Tcl_ListObjAppendElement(NULL, l, d);
    }
    return l;
}

/*
 * get_prog_data_info -data_name name
 *	A dict describing the entry (not a Microchip command).
 */
static int
GetProgDataInfoObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const SppsOption opts[] = {
	{"data_name", SPPS_OPT_STRING, 1, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    JmSession *s = JmGetSession(interp);
    Tcl_Obj *v[1], *res, *bsl;
    JmProgData *d;
    JmJdc jdc;
    char hex[2 * PROTO_DIGEST + 1], feat[64];
    size_t i;
    int rc = TCL_ERROR;

    (void) cd;
    memset(&jdc, 0, sizeof(jdc));
    if (JM_PARSE(interp, "get_prog_data_info -data_name \"name\"", opts, objc,
	    objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (JmRequireProject(interp, s, "get_prog_data_info") != TCL_OK
	    || FindData(interp, s, "get_prog_data_info", Tcl_GetString(v[0]),
		    &d) != TCL_OK
	    || DataJdc(interp, "get_prog_data_info", d, &jdc) != TCL_OK) {
	goto done;
    }
    res = Tcl_NewDictObj();
#define PUT(k, o) Tcl_DictObjPut(NULL, res, Tcl_NewStringObj(k, -1), (o))
    PUT("name", Tcl_NewStringObj(d->name, -1));
    PUT("flow", Tcl_NewStringObj(d->keysetName ? "HSM" : "non-HSM", -1));
    PUT("keyset", Tcl_NewStringObj(d->keysetName ? d->keysetName : "", -1));
    PUT("jdc_file", Tcl_NewStringObj(d->jdcSource, -1));
    proto_hex(d->jdcDigest, PROTO_DIGEST, hex);
    PUT("jdc_digest", Tcl_NewStringObj(hex, -1));
    PUT("design", Tcl_NewStringObj(jdc.designName, -1));
    PUT("family", Tcl_NewStringObj(jdc.family, -1));
    PUT("die", Tcl_NewStringObj(jdc.die, -1));
    jm_features_format(jm_jdc_components(&jdc), feat, sizeof(feat));
    PUT("components", Tcl_NewStringObj(feat, -1));
    PUT("envm_clients", ClientsObj(jdc.envm, jdc.nEnvm));
    PUT("snvm_clients", ClientsObj(jdc.snvm, jdc.nSnvm));
    PUT("envm_updates", UpdatesObj(d->envmUpdates, d->nEnvmUpdates));
    PUT("snvm_updates", UpdatesObj(d->snvmUpdates, d->nSnvmUpdates));
    bsl = Tcl_NewListObj(0, NULL);
    for (i = 0; i < d->nBitstreams; i++) {
	const JmBitstreamDef *b = &d->bitstreams[i];
	Tcl_Obj *bd = Tcl_NewDictObj();

	jm_features_format(b->features, feat, sizeof(feat));
#define BPUT(k, o) Tcl_DictObjPut(NULL, bd, Tcl_NewStringObj(k, -1), (o))
	BPUT("name", Tcl_NewStringObj(b->name, -1));
	BPUT("type", Tcl_NewStringObj(b->type, -1));
	BPUT("features", Tcl_NewStringObj(feat, -1));
	BPUT("protocol", Tcl_NewStringObj(b->protocol, -1));
	BPUT("auth_keymode", Tcl_NewStringObj(b->keyMode, -1));
	BPUT("generate_coc", Tcl_NewBooleanObj(b->generateCoc));
	BPUT("envm_clients", StringsObj(b->envmClients, b->nEnvmClients));
	BPUT("per_device_keys", StringsObj(b->perDevice, b->nPerDevice));
#undef BPUT
	Tcl_ListObjAppendElement(NULL, bsl, bd);
    }
    PUT("bitstreams", bsl);
#undef PUT
    Tcl_SetObjResult(interp, res);
    rc = TCL_OK;

  done:
    jm_jdc_free(&jdc);
    Spps_FreeOptionValues(opts, v);
    return rc;
}

const JmCommand jmDataCommands[] = {
    {"get_prog_data_info", GetProgDataInfoObjCmd},
    {"init_bitstream", InitBitstreamObjCmd},
    {"list_prog_data", ListProgDataObjCmd},
    {"new_prog_data", NewProgDataObjCmd},
    {"remove_bitstream", RemoveBitstreamObjCmd},
    {"remove_envm_update", RemoveEnvmUpdateObjCmd},
    {"remove_prog_data", RemoveProgDataObjCmd},
    {"remove_snvm_update", RemoveSnvmUpdateObjCmd},
    {"set_envm_update", SetEnvmUpdateObjCmd},
    {"set_snvm_update", SetSnvmUpdateObjCmd},
    {NULL, NULL}
};
