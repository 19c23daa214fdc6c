/*
 * tcl_jdc.c --
 *
 *	spps::jdc (doc/spps_jdc.n): make and read JDC files, the design
 *	hand-off that Libero's "Export Job Manager Data" writes, so that
 *	users without Libero can make test designs.
 *
 *	    spps::jdc create -file F -family FAMILY -die DIE ?-design_name N?
 *	        ?-fabric_size BYTES? ?-envm_client {name size ?file?}...?
 *	        ?-snvm_client {name size ?file?}...? ?-security {name value ...}?
 *	    spps::jdc info F
 *
 *	Generated content (fabric, eNVM/sNVM clients without a file) is a
 *	deterministic function of the design name (jm_generate_content), so
 *	the same command makes the same file on every machine.
 */

#include "spps_tcl.h"
#include "plat.h"
#include "proto/proto.h"
#include "proto/proto_jm.h"
#include "sim/sim_factory.h"

#include <stdlib.h>
#include <string.h>

#define MAX_FABRIC  (64u * 1024 * 1024)
#define MAX_CLIENT  (16u * 1024 * 1024)

/*
 * ParseClients --
 *	The values of a repeatable -envm_client/-snvm_client option: each
 *	{name size ?file?}.  Content comes from the file (raw bytes, at most
 *	size) or is generated.
 */
static int
ParseClients(Tcl_Interp *interp, const char *opt, Tcl_Obj *list,
	const char *design, JmClient **out, size_t *nOut)
{
    Tcl_Obj **items;
    int n, i;
    JmClient *c;

    *out = NULL;
    *nOut = 0;
    if (list == NULL) {
	return TCL_OK;
    }
    Tcl_ListObjGetElements(NULL, list, &n, &items);
    if ((c = calloc((size_t) n + 1, sizeof(*c))) == NULL) {
	return Spps_Error(interp, "JDC IO", "out of memory");
    }
    *out = c;
    for (i = 0; i < n; i++) {
	Tcl_Obj **f;
	int nf, k;
	Tcl_WideInt size;
	const char *name;

	if (Tcl_ListObjGetElements(NULL, items[i], &nf, &f) != TCL_OK
		|| nf < 2 || nf > 3
		|| Tcl_GetWideIntFromObj(NULL, f[1], &size) != TCL_OK
		|| size < 1 || size > (Tcl_WideInt) MAX_CLIENT
		|| Tcl_GetString(f[0])[0] == '\0') {
	    return Spps_ErrorObj(interp, Tcl_ObjPrintf("OPTION VALUE %s", opt),
		    Tcl_ObjPrintf("Parameter '%s' has illegal value. '%s': give "
			    "{name size ?content file?}, size 1 to %u bytes.",
			    opt, Tcl_GetString(items[i]), MAX_CLIENT));
	}
	name = Tcl_GetString(f[0]);
	for (k = 0; k < i; k++) {
	    if (strcmp(c[k].name, name) == 0) {
		return Spps_ErrorObj(interp, Tcl_ObjPrintf("OPTION VALUE %s",
			opt), Tcl_ObjPrintf("Parameter '%s' has illegal value. "
			"Client '%s' is given twice.", opt, name));
	    }
	}
	*nOut = (size_t) i + 1;
	c[i].name = jm_strdup(name);
	c[i].size = (uint64_t) size;
	if (nf == 3) {
	    PlatError perr;
	    const char *path = Tcl_GetString(f[2]);

	    if (!plat_file_exists(path)) {
		return Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE NOTFOUND {%s}",
			path), Tcl_ObjPrintf("Parameter '%s' : the file '%s' "
			"does not exist.", opt, path));
	    }
	    if (plat_read_file(path, (size_t) size, &c[i].data, &c[i].len,
		    &perr) != 0) {
		return Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE IO {%s}", path),
			Tcl_ObjPrintf("Parameter '%s' : %s (a client's content "
				"may not be larger than the client)", opt,
				perr.msg));
	    }
	} else {
	    ProtoError err;
	    Tcl_Obj *label = Tcl_ObjPrintf("%s %s", opt, name);

	    Tcl_IncrRefCount(label);
	    c[i].len = (size_t) size;
	    c[i].data = malloc((size_t) size);
	    if (c[i].name == NULL || c[i].data == NULL
		    || jm_generate_content(design, Tcl_GetString(label),
			    c[i].data, c[i].len, &err) != 0) {
		Tcl_DecrRefCount(label);
		return Spps_Error(interp, "JDC IO", "cannot make the content of "
			"client '%s'", name);
	    }
	    Tcl_DecrRefCount(label);
	}
    }
    return TCL_OK;
}

/*
 * spps::jdc create ...
 */
static int
JdcCreateObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    enum { O_FILE, O_FAMILY, O_DIE, O_DESIGN, O_FABRIC, O_ENVM, O_SNVM, O_SEC };
    static const SppsOption opts[] = {
	{"file", SPPS_OPT_STRING, 1, NULL, NULL},
	{"family", SPPS_OPT_STRING, 1, NULL, NULL},
	{"die", SPPS_OPT_STRING, 1, NULL, NULL},
	{"design_name", SPPS_OPT_STRING, 0, NULL, NULL},
	{"fabric_size", SPPS_OPT_INT, 0, NULL, NULL},
	{"envm_client", SPPS_OPT_LIST, 0, NULL, NULL},
	{"snvm_client", SPPS_OPT_LIST, 0, NULL, NULL},
	{"security", SPPS_OPT_STRING, 0, NULL, NULL},
	{NULL, 0, 0, NULL, NULL}
    };
    static const char usage[] = "spps::jdc create -file \"file\" -family "
	    "\"family\" -die \"die\" [-design_name \"name\"] [-fabric_size "
	    "\"bytes\"] [-envm_client \"{name size ?file?}\"]... [-snvm_client "
	    "\"{name size ?file?}\"]... [-security \"{name value ...}\"]";
    Tcl_Obj *v[8], **sec;
    JmJdc jdc;
    const char *family, *die;
    char *design = NULL;
    Tcl_WideInt fabricSize = 16384;
    uint8_t *image = NULL;
    size_t len = 0;
    int nSec = 0, i, rc = TCL_ERROR;
    ProtoError err;
    PlatError perr;

    (void) cd;
    memset(&jdc, 0, sizeof(jdc));
    if (Spps_ParseOptions(interp, usage, opts, 1, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    die = Tcl_GetString(v[O_DIE]);
    family = sim_die_family(die);
    if (family == NULL) {
	Spps_ErrorObj(interp, Tcl_NewStringObj("OPTION VALUE die", -1),
		Tcl_ObjPrintf("Parameter 'die' has illegal value. '%s' is not a "
			"die spps knows (SmartFusion2, IGLOO2, PolarFire and "
			"PolarFire SoC dies, e.g. M2S090TS, MPF300TS).", die));
	goto done;
    }
    if (strcasecmp(family, Tcl_GetString(v[O_FAMILY])) != 0) {
	Spps_ErrorObj(interp, Tcl_NewStringObj("OPTION VALUE family", -1),
		Tcl_ObjPrintf("Parameter 'family' has illegal value. Die %s is "
			"of family %s, not '%s'.", die, family,
			Tcl_GetString(v[O_FAMILY])));
	goto done;
    }
    if (v[O_DESIGN] != NULL) {
	design = jm_strdup(Tcl_GetString(v[O_DESIGN]));
    } else {
	const char *p = Tcl_GetString(v[O_FILE]), *slash = strrchr(p, '/'), *dot;

	design = jm_strdup(slash ? slash + 1 : p);
	if (design != NULL && (dot = strrchr(design, '.')) != NULL
		&& dot != design) {
	    design[dot - design] = '\0';
	}
    }
    if (design == NULL || design[0] == '\0' || strlen(design) > 256) {
	Spps_Error(interp, "OPTION VALUE design_name", "Parameter 'design_name' "
		"has illegal value.");
	goto done;
    }
    if (v[O_FABRIC] != NULL) {
	Tcl_GetWideIntFromObj(NULL, v[O_FABRIC], &fabricSize);
	if (fabricSize < 0 || fabricSize > (Tcl_WideInt) MAX_FABRIC) {
	    Spps_Error(interp, "OPTION VALUE fabric_size", "Parameter "
		    "'fabric_size' has illegal value. Give 0 to %u bytes.",
		    MAX_FABRIC);
	    goto done;
	}
    }
    if (v[O_SEC] != NULL) {
	if (Tcl_ListObjGetElements(NULL, v[O_SEC], &nSec, &sec) != TCL_OK
		|| nSec % 2 != 0) {
	    Spps_Error(interp, "OPTION VALUE security", "Parameter 'security' "
		    "has illegal value. Give {name value ...}.");
	    goto done;
	}
    }
    jdc.family = jm_strdup(family);
    jdc.die = jm_strdup(die);
    jdc.designName = design;
    design = NULL;
    jdc.tool = jm_strdup("spps::jdc " PACKAGE_VERSION);
    if (fabricSize > 0) {
	jdc.fabricLen = (size_t) fabricSize;
	if ((jdc.fabric = malloc(jdc.fabricLen)) == NULL
		|| jm_generate_content(jdc.designName, "fabric", jdc.fabric,
			jdc.fabricLen, &err) != 0) {
	    Spps_Error(interp, "JDC IO", "cannot make the fabric data");
	    goto done;
	}
    }
    if (ParseClients(interp, "envm_client", v[O_ENVM], jdc.designName,
	    &jdc.envm, &jdc.nEnvm) != TCL_OK
	    || ParseClients(interp, "snvm_client", v[O_SNVM], jdc.designName,
		    &jdc.snvm, &jdc.nSnvm) != TCL_OK) {
	goto done;
    }
    if (nSec > 0) {
	if ((jdc.security = calloc((size_t) nSec / 2, sizeof(JmNameValue)))
		== NULL) {
	    Spps_Error(interp, "JDC IO", "out of memory");
	    goto done;
	}
	for (i = 0; i < nSec; i += 2) {
	    int k;

	    for (k = 0; k < i; k += 2) {
		if (strcmp(Tcl_GetString(sec[k]), Tcl_GetString(sec[i])) == 0) {
		    Spps_ErrorObj(interp, Tcl_NewStringObj(
			    "OPTION VALUE security", -1), Tcl_ObjPrintf(
			    "Parameter 'security' has illegal value. '%s' is "
			    "given twice.", Tcl_GetString(sec[i])));
		    goto done;
		}
	    }
	    if (Tcl_GetString(sec[i])[0] == '\0') {
		Spps_Error(interp, "OPTION VALUE security", "Parameter "
			"'security' has illegal value. A name is empty.");
		goto done;
	    }
	    jdc.security[i / 2].name = jm_strdup(Tcl_GetString(sec[i]));
	    jdc.security[i / 2].value = jm_strdup(Tcl_GetString(sec[i + 1]));
	    jdc.nSecurity = (size_t) i / 2 + 1;
	}
    }
    if (jm_jdc_write(&jdc, &image, &len, &err) != 0) {
	Spps_ErrorObj(interp, Tcl_NewStringObj("JDC IO", -1),
		Tcl_ObjPrintf("spps::jdc create: %s", err.msg));
	goto done;
    }
    if (plat_write_file_durable(Tcl_GetString(v[O_FILE]), image, len, 0644,
	    &perr) != 0) {
	Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE IO {%s}",
		Tcl_GetString(v[O_FILE])), Tcl_ObjPrintf("spps::jdc create: %s",
		perr.msg));
	goto done;
    }
    Tcl_SetObjResult(interp, v[O_FILE]);
    rc = TCL_OK;

  done:
    free(design);
    free(image);
    jm_jdc_free(&jdc);
    Spps_FreeOptionValues(opts, v);
    return rc;
}

/*
 * ClientList --
 *	A list of {name size contentSize} for spps::jdc info.
 */
static Tcl_Obj *
ClientList(const JmClient *c, size_t n)
{
    Tcl_Obj *l = Tcl_NewListObj(0, NULL);
    size_t i;

    for (i = 0; i < n; i++) {
	Tcl_Obj *e = Tcl_NewListObj(0, NULL);

	Tcl_ListObjAppendElement(NULL, e, Tcl_NewStringObj(c[i].name, -1));
	Tcl_ListObjAppendElement(NULL, e, Tcl_NewWideIntObj(
		(Tcl_WideInt) c[i].size));
	Tcl_ListObjAppendElement(NULL, e, Tcl_NewWideIntObj(
		(Tcl_WideInt) c[i].len));
	Tcl_ListObjAppendElement(NULL, l, e);
    }
    return l;
}

/*
 * spps::jdc info file
 *	A dict: family die design_name tool components fabric_size
 *	envm_clients {{name size content_size} ...} snvm_clients security
 *	{name value ...} digest (SHA-384 of the file, hex).
 */
static int
JdcInfoObjCmd(ClientData cd, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    const char *path;
    uint8_t *image = NULL, digest[PROTO_DIGEST];
    size_t len = 0, i;
    JmJdc jdc;
    ProtoError err;
    PlatError perr;
    Tcl_Obj *d, *sec;
    char hex[2 * PROTO_DIGEST + 1], feat[64];

    (void) cd;
    if (objc != 2) {
	Tcl_WrongNumArgs(interp, 1, objv, "file");
	return TCL_ERROR;
    }
    path = Tcl_GetString(objv[1]);
    if (!plat_file_exists(path)) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE NOTFOUND {%s}", path),
		Tcl_ObjPrintf("spps::jdc info: the file '%s' does not exist.",
			path));
    }
    if (plat_read_file(path, JM_MAX_JDC, &image, &len, &perr) != 0) {
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("FILE IO {%s}", path),
		Tcl_ObjPrintf("spps::jdc info: %s", perr.msg));
    }
    if (jm_jdc_read(image, len, path, &jdc, &err) != 0) {
	free(image);
	return Spps_ErrorObj(interp, Tcl_ObjPrintf("JDC CORRUPT {%s}", path),
		Tcl_ObjPrintf("spps::jdc info: %s", err.msg));
    }
    proto_sha384(image, len, digest);
    free(image);
    proto_hex(digest, PROTO_DIGEST, hex);
    jm_features_format(jm_jdc_components(&jdc), feat, sizeof(feat));
    d = Tcl_NewDictObj();
#define PUT(k, o) Tcl_DictObjPut(NULL, d, Tcl_NewStringObj(k, -1), (o))
    PUT("family", Tcl_NewStringObj(jdc.family, -1));
    PUT("die", Tcl_NewStringObj(jdc.die, -1));
    PUT("design_name", Tcl_NewStringObj(jdc.designName, -1));
    PUT("tool", Tcl_NewStringObj(jdc.tool ? jdc.tool : "", -1));
    PUT("components", Tcl_NewStringObj(feat, -1));
    PUT("fabric_size", Tcl_NewWideIntObj((Tcl_WideInt) jdc.fabricLen));
    PUT("envm_clients", ClientList(jdc.envm, jdc.nEnvm));
    PUT("snvm_clients", ClientList(jdc.snvm, jdc.nSnvm));
    sec = Tcl_NewListObj(0, NULL);
    for (i = 0; i < jdc.nSecurity; i++) {
	Tcl_ListObjAppendElement(NULL, sec,
		Tcl_NewStringObj(jdc.security[i].name, -1));
	Tcl_ListObjAppendElement(NULL, sec,
		Tcl_NewStringObj(jdc.security[i].value, -1));
    }
    PUT("security", sec);
    PUT("digest", Tcl_NewStringObj(hex, -1));
#undef PUT
    jm_jdc_free(&jdc);
    Tcl_SetObjResult(interp, d);
    return TCL_OK;
}

/*
 * SppsJdc_Init --
 *	The ensemble spps::jdc with its subcommands create and info.
 */
int
SppsJdc_Init(Tcl_Interp *interp)
{
    Tcl_Namespace *ns;
    Tcl_Command ens;

    ns = Tcl_FindNamespace(interp, "::spps::jdc", NULL, 0);
    if (ns == NULL
	    && (ns = Tcl_CreateNamespace(interp, "::spps::jdc", NULL, NULL))
		== NULL) {
	return TCL_ERROR;
    }
    Tcl_CreateObjCommand(interp, "::spps::jdc::create", JdcCreateObjCmd, NULL,
	    NULL);
    Tcl_CreateObjCommand(interp, "::spps::jdc::info", JdcInfoObjCmd, NULL,
	    NULL);
    if (Tcl_Export(interp, ns, "*", 0) != TCL_OK) {
	return TCL_ERROR;
    }
    ens = Tcl_CreateEnsemble(interp, "::spps::jdc", ns, 0);
    return ens != NULL ? TCL_OK : TCL_ERROR;
}
