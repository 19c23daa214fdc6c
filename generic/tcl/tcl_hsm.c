/*
 * tcl_hsm.c --
 *
 *	The Tcl face of the software HSM engine (doc/spps_hsm.n): the command
 *	spps::hsm and the handle commands it creates.  One engine call is one
 *	Tcl command: every handle of the engine (a session, a key store
 *	service, a service opened under either) is a command, as tclsqlite's
 *	database and Tcl's "zlib stream" are, and its methods are the API
 *	functions that take that handle, named without "hsm_".  Options are
 *	named after the fields of the argument structures, flag bits are bare
 *	options, enumerations take the suffix of their C macro or a number.
 *
 *	The engine is reached only through its public API (hsm_api.h, and
 *	hsm_spps.h for the lifecycle extension).  This
 *	file holds engine handles and byte strings; no key is ever held here
 *	except what the API itself hands out (the exported root KEK), and the
 *	host-side helper "spps::hsm wrap_key" that a key owner uses to wrap a
 *	key for hsm_manage_key.
 *
 *	State: every handle command owns an HsmHandle (its client data); the
 *	handles of one interpreter form the same tree as the engine objects,
 *	so that closing a handle deletes the commands of its subtree too.
 *	The per-interpreter counters that name commands are assoc data.  There
 *	is no global C state: two interpreters use the engine independently.
 */

#include "spps_tcl.h"
#include "hsm_api.h"
#include "hsm_spps.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

/* ------------------------------------------------------------------ */
/* Handle kinds                                                         */
/* ------------------------------------------------------------------ */

typedef enum HandleKind {
    KIND_SESSION,
    KIND_KEY_STORE,
    KIND_KEY_MANAGEMENT,
    KIND_CIPHER,
    KIND_SIGN_GEN,
    KIND_SIGN_VER,
    KIND_RNG,
    KIND_HASH,
    KIND_MAC,
    KIND_DATA_STORAGE,
    KIND_COUNT
} HandleKind;

typedef struct HsmHandle HsmHandle;

/* A method of a handle command: objv[1] is the method name. */
typedef int (MethodProc)(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[]);

typedef struct Method {
    const char *name;		/* first field: Tcl_GetIndexFromObjStruct */
    MethodProc *proc;
} Method;

typedef struct KindInfo {
    const char *prefix;		/* command name: ::spps::hsm::<prefix>N */
    hsm_err_t (*close)(hsm_hdl_t);
    const Method *methods;	/* NULL-terminated, alphabetical */
} KindInfo;

/*
 * HsmHandle --
 *	The client data of one handle command.  engineOpen says whether the
 *	engine handle is still open: it is cleared when the handle or an
 *	ancestor is closed in the engine, so that nothing closes it twice.
 *	Freed through Tcl_EventuallyFree, so a method that deletes its own
 *	command (close) still has its struct until it returns.
 */
struct HsmHandle {
    Tcl_Interp *interp;
    Tcl_Command token;
    HandleKind kind;
    hsm_hdl_t hdl;
    int engineOpen;
    int deleted;		/* the command has been deleted */
    HsmHandle *parent;
    HsmHandle *children;	/* first child */
    HsmHandle *prevSibling, *nextSibling;
};

/* Per-interpreter state: the counters that number command names. */
#define HSM_ASSOC_KEY "spps::hsm"

typedef struct HsmInterp {
    unsigned long counter[KIND_COUNT];
} HsmInterp;

static const KindInfo kinds[KIND_COUNT];	/* defined at the end */

/* ------------------------------------------------------------------ */
/* Errors                                                               */
/* ------------------------------------------------------------------ */

/*
 * NamesFunction --
 *	1 if an engine detail starts with a function name: the command's
 *	own (what), or a word with an underscore, followed by ':' or ' '.
 */
static int
NamesFunction(const char *detail, const char *what)
{
    size_t whatLen = strlen(what), n;

    if (strncmp(detail, what, whatLen) == 0
	    && (detail[whatLen] == ':' || detail[whatLen] == ' ')) {
	return 1;
    }
    n = strspn(detail, "abcdefghijklmnopqrstuvwxyz_0123456789");
    return n > 0 && memchr(detail, '_', n) != NULL
	    && (detail[n] == ':' || detail[n] == ' ');
}

/*
 * HsmError --
 *	Leaves the error of a failed engine call: a message saying which
 *	command failed, what was wrong and where (the engine's detail), and
 *	what the code means; -errorcode {SPPS HSM <NAME> <code>}, NAME being
 *	the enumerator without its HSM_ prefix.  Returns TCL_ERROR.
 */
static int
HsmError(Tcl_Interp *interp, const char *what, hsm_err_t err)
{
    const char *name = hsm_spps_err_name(err);
    const char *text = hsm_spps_err_text(err);
    const char *detail = hsm_spps_last_error();
    Tcl_Obj *message, *code;
    int textLen = (int) strlen(text);

    if (strncmp(name, "HSM_", 4) == 0) {
	name += 4;
    }
    /* The text is a sentence; it goes in parentheses without its stop. */
    if (textLen > 0 && text[textLen - 1] == '.') {
	textLen--;
    }
    if (detail != NULL && detail[0] != '\0'
	    && strncmp(detail, text, (size_t) textLen) != 0) {
	/* The engine's detail often starts with the name of its function
	 * ("cipher_one_go AES-CCM: ...", "export_root_kek: ..."): then it
	 * says where already, and the command's name would say it twice. */
	if (NamesFunction(detail, what)) {
	    message = Tcl_ObjPrintf("%s (%.*s)", detail, textLen, text);
	} else {
	    message = Tcl_ObjPrintf("%s: %s (%.*s)", what, detail, textLen,
		    text);
	}
    } else {
	message = Tcl_ObjPrintf("%s: %.*s", what, textLen, text);
    }
    code = Tcl_ObjPrintf("HSM %s %d", name, (int) err);
    return Spps_ErrorObj(interp, code, message);
}

/*
 * HsmCheck --
 *	The result of an engine call: TCL_OK for success and for the warning
 *	HSM_KEY_STORE_COUNTER (which the seed defines as "updates are still
 *	allowed": the call did its work), else HsmError.  A warning is
 *	written to the tool log and reported in *warned (if not NULL), so
 *	that the command can add it to its result.
 */
static int
HsmCheck(Tcl_Interp *interp, const char *what, hsm_err_t err, int *warned)
{
    if (warned != NULL) {
	*warned = 0;
    }
    if (err == HSM_NO_ERROR) {
	return TCL_OK;
    }
    if (err == HSM_KEY_STORE_COUNTER) {
	const char *detail = hsm_spps_last_error();

	const char *text = hsm_spps_err_text(err);

	if (detail == NULL || detail[0] == '\0') {
	    detail = text;
	}
	/* The line says "Warning:" itself. */
	if (strncasecmp(detail, "warning: ", 9) == 0) {
	    detail += 9;
	}
	Spps_Log(interp, "Warning: %s: %s", what, detail);
	if (warned != NULL) {
	    *warned = 1;
	}
	return TCL_OK;
    }
    return HsmError(interp, what, err);
}

/* OptionError -- an option error: message and {SPPS OPTION cond name}. */
static int
OptionError(Tcl_Interp *interp, const char *cond, const char *optName,
	Tcl_Obj *message)
{
    Tcl_Obj *words[3];

    if (optName[0] == '-') {
	optName++;
    }
    words[0] = Tcl_NewStringObj("OPTION", -1);
    words[1] = Tcl_NewStringObj(cond, -1);
    words[2] = Tcl_NewStringObj(optName, -1);
    return Spps_ErrorObj(interp, Tcl_NewListObj(3, words), message);
}

/*
 * UnknownWord --
 *	After Tcl_GetIndexFromObjStruct refused word (its message "bad option
 *	"-x": must be ..." is the result): -errorcode {SPPS OPTION UNKNOWN x}.
 */
static int
UnknownWord(Tcl_Interp *interp, Tcl_Obj *word)
{
    const char *w = Tcl_GetString(word);

    return OptionError(interp, "UNKNOWN", w, Tcl_GetObjResult(interp));
}

/* ------------------------------------------------------------------ */
/* Enumerations                                                         */
/* ------------------------------------------------------------------ */

/*
 * EnumEntry --
 *	One name of an enumeration: the suffix of its C macro, its value, a
 *	size that goes with it (EC coordinate bytes of a key type or scheme,
 *	digest bytes of a hash), and whether it is a short alias that the
 *	error message does not list.
 */
typedef struct EnumEntry {
    const char *name;		/* first field: Tcl_GetIndexFromObjStruct */
    int value;
    int size;
    int alias;
} EnumEntry;

static const EnumEntry keyTypeNames[] = {
    {"ECDSA_NIST_P224",        HSM_KEY_TYPE_ECDSA_NIST_P224,        28, 0},
    {"ECDSA_NIST_P256",        HSM_KEY_TYPE_ECDSA_NIST_P256,        32, 0},
    {"ECDSA_NIST_P384",        HSM_KEY_TYPE_ECDSA_NIST_P384,        48, 0},
    {"ECDSA_BRAINPOOL_R1_224", HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_224, 28, 0},
    {"ECDSA_BRAINPOOL_R1_256", HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256, 32, 0},
    {"ECDSA_BRAINPOOL_R1_384", HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_384, 48, 0},
    {"ECDSA_BRAINPOOL_T1_224", HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_224, 28, 0},
    {"ECDSA_BRAINPOOL_T1_256", HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_256, 32, 0},
    {"ECDSA_BRAINPOOL_T1_384", HSM_KEY_TYPE_ECDSA_BRAINPOOL_T1_384, 48, 0},
    {"AES_128",                HSM_KEY_TYPE_AES_128,                0, 0},
    {"AES_192",                HSM_KEY_TYPE_AES_192,                0, 0},
    {"AES_256",                HSM_KEY_TYPE_AES_256,                0, 0},
    {NULL, 0, 0, 0}
};

static const EnumEntry schemeNames[] = {
    {"ECDSA_NIST_P224_SHA_256",        HSM_SIGNATURE_SCHEME_ECDSA_NIST_P224_SHA_256,        28, 0},
    {"ECDSA_NIST_P256_SHA_256",        HSM_SIGNATURE_SCHEME_ECDSA_NIST_P256_SHA_256,        32, 0},
    {"ECDSA_NIST_P384_SHA_384",        HSM_SIGNATURE_SCHEME_ECDSA_NIST_P384_SHA_384,        48, 0},
    {"ECDSA_BRAINPOOL_R1_224_SHA_256", HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_R1_224_SHA_256, 28, 0},
    {"ECDSA_BRAINPOOL_R1_256_SHA_256", HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_R1_256_SHA_256, 32, 0},
    {"ECDSA_BRAINPOOL_R1_384_SHA_384", HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_R1_384_SHA_384, 48, 0},
    {"ECDSA_BRAINPOOL_T1_224_SHA_256", HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_T1_224_SHA_256, 28, 0},
    {"ECDSA_BRAINPOOL_T1_256_SHA_256", HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_T1_256_SHA_256, 32, 0},
    {"ECDSA_BRAINPOOL_T1_384_SHA_384", HSM_SIGNATURE_SCHEME_ECDSA_BRAINPOOL_T1_384_SHA_384, 48, 0},
    {NULL, 0, 0, 0}
};

static const EnumEntry hashAlgoNames[] = {
    {"SHA_224", HSM_HASH_ALGO_SHA_224, 28, 0},
    {"SHA_256", HSM_HASH_ALGO_SHA_256, 32, 0},
    {"SHA_384", HSM_HASH_ALGO_SHA_384, 48, 0},
    {"SHA_512", HSM_HASH_ALGO_SHA_512, 64, 0},
    {NULL, 0, 0, 0}
};

static const EnumEntry cipherAlgoNames[] = {
    {"AES_ECB", HSM_CIPHER_ONE_GO_ALGO_AES_ECB, 0, 0},
    {"AES_CBC", HSM_CIPHER_ONE_GO_ALGO_AES_CBC, 0, 0},
    {"AES_CCM", HSM_CIPHER_ONE_GO_ALGO_AES_CCM, 0, 0},
    {"ECB",     HSM_CIPHER_ONE_GO_ALGO_AES_ECB, 0, 1},
    {"CBC",     HSM_CIPHER_ONE_GO_ALGO_AES_CBC, 0, 1},
    {"CCM",     HSM_CIPHER_ONE_GO_ALGO_AES_CCM, 0, 1},
    {NULL, 0, 0, 0}
};

static const EnumEntry aeAlgoNames[] = {
    {"AES_GCM", HSM_AUTH_ENC_ALGO_AES_GCM, 0, 0},
    {"GCM",     HSM_AUTH_ENC_ALGO_AES_GCM, 0, 1},
    {NULL, 0, 0, 0}
};

static const EnumEntry macAlgoNames[] = {
    {"AES_CMAC", HSM_OP_MAC_ONE_GO_ALGO_AES_CMAC, 0, 0},
    {"CMAC",     HSM_OP_MAC_ONE_GO_ALGO_AES_CMAC, 0, 1},
    {NULL, 0, 0, 0}
};

static const EnumEntry keyInfoNames[] = {
    {"PERSISTENT", HSM_KEY_INFO_PERSISTENT, 0, 0},
    {"PERMANENT",  HSM_KEY_INFO_PERMANENT,  0, 0},
    {"TRANSIENT",  HSM_KEY_INFO_TRANSIENT,  0, 0},
    {"MASTER",     HSM_KEY_INFO_MASTER,     0, 0},
    {"KEK",        HSM_KEY_INFO_KEK,        0, 0},
    {NULL, 0, 0, 0}
};

/* EnumSize -- the size that goes with a value of table; 0 if unknown. */
static int
EnumSize(const EnumEntry *table, int value)
{
    int i;

    for (i = 0; table[i].name != NULL; i++) {
	if (table[i].value == value) {
	    return table[i].size;
	}
    }
    return 0;
}

/*
 * GetEnum --
 *	A value of an enumeration: one of the names of table in any case, or
 *	an integer from 0 to max (so that every value of the C type can be
 *	passed, including those the engine refuses).  The names are looked up
 *	with an index table on the upper-cased word.  On error, leaves
 *	  bad key_type "x": must be A, B, or C, or an integer from 0 to 255
 *	with -errorcode {SPPS OPTION VALUE key_type}.
 */
static int
GetEnum(Tcl_Interp *interp, const char *optName, Tcl_Obj *obj,
	const EnumEntry *table, Tcl_WideInt max, int *valuePtr)
{
    Tcl_Obj *upper, *message;
    Tcl_WideInt w;
    int idx, len, i, code;
    const char *s = Tcl_GetStringFromObj(obj, &len);

    upper = Tcl_NewStringObj(s, len);
    Tcl_IncrRefCount(upper);
    Tcl_SetObjLength(upper, Tcl_UtfToUpper(Tcl_GetString(upper)));
    code = Tcl_GetIndexFromObjStruct(NULL, upper, table, sizeof(EnumEntry),
	    "value", TCL_EXACT, &idx);
    Tcl_DecrRefCount(upper);
    if (code == TCL_OK) {
	*valuePtr = table[idx].value;
	return TCL_OK;
    }
    if (Tcl_GetWideIntFromObj(NULL, obj, &w) == TCL_OK && w >= 0 && w <= max) {
	*valuePtr = (int) w;
	return TCL_OK;
    }
    message = Tcl_ObjPrintf("bad %s \"%s\": must be ", optName + 1, s);
    for (i = 0; table[i].name != NULL; i++) {
	if (!table[i].alias) {
	    Tcl_AppendPrintfToObj(message, "%s, ", table[i].name);
	}
    }
    Tcl_AppendPrintfToObj(message, "or an integer from 0 to %" TCL_LL_MODIFIER "d",
	    (Tcl_WideInt) max);
    return OptionError(interp, "VALUE", optName, message);
}

/*
 * GetKeyInfo --
 *	A key_info bitmap: a list of names of keyInfoNames (any case) and
 *	integers, OR'ed together; {} and PERSISTENT are 0.
 */
static int
GetKeyInfo(Tcl_Interp *interp, const char *optName, Tcl_Obj *obj,
	int *valuePtr)
{
    Tcl_Obj **elems;
    int n, i, v, bits = 0;

    if (Tcl_ListObjGetElements(NULL, obj, &n, &elems) != TCL_OK) {
	return OptionError(interp, "VALUE", optName, Tcl_ObjPrintf(
		"bad %s \"%s\": must be a list of PERSISTENT, PERMANENT, "
		"TRANSIENT, MASTER, KEK or integers", optName + 1,
		Tcl_GetString(obj)));
    }
    for (i = 0; i < n; i++) {
	if (GetEnum(interp, optName, elems[i], keyInfoNames, 0xFFFF, &v)
		!= TCL_OK) {
	    return TCL_ERROR;
	}
	bits |= v;
    }
    *valuePtr = bits;
    return TCL_OK;
}

/* ------------------------------------------------------------------ */
/* Binary arguments                                                     */
/* ------------------------------------------------------------------ */

/*
 * GetBytes --
 *	The bytes of a binary argument.  Tcl 8.6's Tcl_GetByteArrayFromObj
 *	silently keeps only the low 8 bits of characters above U+00FF, so a
 *	value that is not a pure byte array is checked first: it must have
 *	no such character (a byte above 0xC3 in Tcl's UTF-8 is the lead byte
 *	of one).  maxLen is the width of the API's size field.
 */
static int
GetBytes(Tcl_Interp *interp, const char *optName, Tcl_Obj *obj,
	Tcl_WideInt maxLen, const unsigned char **bytesPtr, int *lenPtr)
{
    const unsigned char *bytes;
    int len;

    /* A pure byte array (no string form) holds bytes only. */
    if (obj->bytes != NULL || obj->typePtr == NULL
	    || strcmp(obj->typePtr->name, "bytearray") != 0) {
	int slen, i;
	const unsigned char *s =
		(const unsigned char *) Tcl_GetStringFromObj(obj, &slen);

	for (i = 0; i < slen; i++) {
	    if (s[i] >= 0xC4) {
		Tcl_UniChar ch = 0;
		int index = Tcl_NumUtfChars((const char *) s, i);

		Tcl_UtfToUniChar((const char *) s + i, &ch);
		return OptionError(interp, "VALUE", optName, Tcl_ObjPrintf(
			"%s: character U+%04X at index %d is not a byte: binary "
			"data must be a byte array (see encoding convertto)",
			optName, (unsigned) ch, index));
	    }
	}
    }
    bytes = Tcl_GetByteArrayFromObj(obj, &len);
    if ((Tcl_WideInt) len > maxLen) {
	return OptionError(interp, "VALUE", optName, Tcl_ObjPrintf(
		"%s: %d bytes is too long: at most %" TCL_LL_MODIFIER "d",
		optName, len, maxLen));
    }
    *bytesPtr = bytes;
    *lenPtr = len;
    return TCL_OK;
}

/*
 * NewBytes --
 *	A new byte array object of len bytes, *bytesPtr pointing at its
 *	storage (for the engine to write into).  len must be >= 0.
 */
static Tcl_Obj *
NewBytes(int len, unsigned char **bytesPtr)
{
    Tcl_Obj *obj = Tcl_NewByteArrayObj(NULL, len);

    *bytesPtr = Tcl_GetByteArrayFromObj(obj, NULL);
    return obj;
}

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

typedef enum OptType {
    OT_FLAG,			/* bare flag, or followed by a boolean */
    OT_BYTES,			/* byte array; max length in max */
    OT_UINT,			/* integer from 0 to max */
    OT_ENUM,			/* a name of table, or an integer 0..max */
    OT_KEYINFO,			/* a list of key info names and integers */
    OT_OBJ			/* any value, interpreted by the method */
} OptType;

typedef struct OptSpec {
    const char *name;		/* first field: Tcl_GetIndexFromObjStruct */
    OptType type;
    Tcl_WideInt max;		/* OT_BYTES: max length; OT_UINT, OT_ENUM: max value */
    const EnumEntry *table;	/* OT_ENUM */
    int required;
} OptSpec;

typedef struct OptVal {
    int given;
    Tcl_WideInt num;		/* flags (0/1), integers, enums, key info */
    const unsigned char *bytes;	/* OT_BYTES */
    int len;
    Tcl_Obj *obj;		/* the word given */
} OptVal;

#define MAX_OPTS 24

/* Field widths of the API. */
#define U8_MAX_  0xFFu
#define U16_MAX_ 0xFFFFu
#define U32_MAX_ 0xFFFFFFFFu
/* The longest byte array Tcl 8.6 holds. */
#define BYTES_MAX INT_MAX

/*
 * ParseOptions --
 *	Parses objv[first..objc-1] as "-option ?value?" pairs of specs (a
 *	table ending with a NULL name) into vals (one per spec).  Options
 *	are looked up with Tcl_GetIndexFromObjStruct, so unique prefixes are
 *	accepted and an unknown one gets Tcl's message:
 *	    bad option "-x": must be -a, -b, or -c     {SPPS OPTION UNKNOWN x}
 *	    option "-x" needs a value                  {SPPS OPTION MISSING x}
 *	    option "-x" is required                    {SPPS OPTION MISSING x}
 *	and values their own (GetEnum, GetBytes, integers):
 *	                                               {SPPS OPTION VALUE x}
 *	A flag may be followed by a boolean (-strict 0): words after a flag
 *	are option names, so a boolean there cannot be mistaken.
 *
 *	Byte arrays are fetched last: the same Tcl_Obj may be given to two
 *	options (literals are shared), and converting it to an integer after
 *	its bytes were taken would free them.
 */
static int
ParseOptions(Tcl_Interp *interp, const OptSpec *specs, int first, int objc,
	Tcl_Obj *const objv[], OptVal *vals)
{
    int i, idx, b, v;

    for (i = 0; specs[i].name != NULL; i++) {
	memset(&vals[i], 0, sizeof(OptVal));
    }
    for (i = first; i < objc; i++) {
	const OptSpec *spec;
	OptVal *val;

	if (Tcl_GetIndexFromObjStruct(interp, objv[i], specs, sizeof(OptSpec),
		"option", 0, &idx) != TCL_OK) {
	    return UnknownWord(interp, objv[i]);
	}
	spec = &specs[idx];
	val = &vals[idx];
	val->given = 1;
	if (spec->type == OT_FLAG) {
	    val->num = 1;
	    if (i + 1 < objc && Tcl_GetString(objv[i + 1])[0] != '-'
		    && Tcl_GetBooleanFromObj(NULL, objv[i + 1], &b) == TCL_OK) {
		val->num = b;
		i++;
	    }
	    continue;
	}
	if (i + 1 >= objc) {
	    return OptionError(interp, "MISSING", spec->name, Tcl_ObjPrintf(
		    "option \"%s\" needs a value", spec->name));
	}
	val->obj = objv[++i];
	switch (spec->type) {
	case OT_UINT: {
	    Tcl_WideInt w;

	    if (Tcl_GetWideIntFromObj(NULL, val->obj, &w) != TCL_OK
		    || w < 0 || w > spec->max) {
		return OptionError(interp, "VALUE", spec->name, Tcl_ObjPrintf(
			"bad %s \"%s\": must be an integer from 0 to %"
			TCL_LL_MODIFIER "d", spec->name + 1,
			Tcl_GetString(val->obj), spec->max));
	    }
	    val->num = w;
	    break;
	}
	case OT_ENUM:
	    if (GetEnum(interp, spec->name, val->obj, spec->table, spec->max,
		    &v) != TCL_OK) {
		return TCL_ERROR;
	    }
	    val->num = v;
	    break;
	case OT_KEYINFO:
	    if (GetKeyInfo(interp, spec->name, val->obj, &v) != TCL_OK) {
		return TCL_ERROR;
	    }
	    val->num = v;
	    break;
	default:
	    break;
	}
    }
    for (i = 0; specs[i].name != NULL; i++) {
	if (specs[i].required && !vals[i].given) {
	    return OptionError(interp, "MISSING", specs[i].name, Tcl_ObjPrintf(
		    "option \"%s\" is required", specs[i].name));
	}
    }
    for (i = 0; specs[i].name != NULL; i++) {
	if (specs[i].type == OT_BYTES && vals[i].given
		&& GetBytes(interp, specs[i].name, vals[i].obj, specs[i].max,
			&vals[i].bytes, &vals[i].len) != TCL_OK) {
	    return TCL_ERROR;
	}
    }
    return TCL_OK;
}

/* Exclusive -- refuses two options that exclude each other. */
static int
Exclusive(Tcl_Interp *interp, const OptSpec *specs, const OptVal *vals,
	int a, int b)
{
    if (vals[a].given && vals[a].num && vals[b].given && vals[b].num) {
	return OptionError(interp, "VALUE", specs[b].name, Tcl_ObjPrintf(
		"options \"%s\" and \"%s\" exclude each other",
		specs[a].name, specs[b].name));
    }
    return TCL_OK;
}

/* Flag -- bit if the flag option was given (and not turned off). */
static unsigned
Flag(const OptVal *val, unsigned bit)
{
    return (val->given && val->num) ? bit : 0u;
}

/* NoArgs -- a method that takes no argument. */
static int
NoArgs(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    if (objc != 2) {
	Tcl_WrongNumArgs(interp, 2, objv, NULL);
	return TCL_ERROR;
    }
    return TCL_OK;
}

/* ------------------------------------------------------------------ */
/* Handle commands                                                      */
/* ------------------------------------------------------------------ */

/* HsmInterpDelete -- frees the interpreter's counters with it. */
static void
HsmInterpDelete(ClientData clientData, Tcl_Interp *interp)
{
    (void) interp;
    Tcl_Free((char *) clientData);
}

/* GetHsmInterp -- the interpreter's counters, made on first use. */
static HsmInterp *
GetHsmInterp(Tcl_Interp *interp)
{
    HsmInterp *hi = Tcl_GetAssocData(interp, HSM_ASSOC_KEY, NULL);

    if (hi == NULL) {
	hi = (HsmInterp *) Tcl_Alloc(sizeof(HsmInterp));
	memset(hi, 0, sizeof(HsmInterp));
	Tcl_SetAssocData(interp, HSM_ASSOC_KEY, HsmInterpDelete, hi);
    }
    return hi;
}

/* Unlink -- takes h out of its parent's list of children. */
static void
Unlink(HsmHandle *h)
{
    if (h->parent == NULL) {
	return;
    }
    if (h->prevSibling != NULL) {
	h->prevSibling->nextSibling = h->nextSibling;
    } else {
	h->parent->children = h->nextSibling;
    }
    if (h->nextSibling != NULL) {
	h->nextSibling->prevSibling = h->prevSibling;
    }
    h->parent = NULL;
    h->prevSibling = h->nextSibling = NULL;
}

/*
 * MarkClosed --
 *	The engine has closed h and its subtree (closing a handle closes
 *	everything under it): no delete proc may close them again.
 */
static void
MarkClosed(HsmHandle *h)
{
    HsmHandle *c;

    h->engineOpen = 0;
    for (c = h->children; c != NULL; c = c->nextSibling) {
	MarkClosed(c);
    }
}

/*
 * HandleDeleteProc --
 *	Runs when a handle command is deleted: by its close method, by
 *	rename to {}, by deleting its namespace or the interpreter, or by the
 *	deletion of its parent.  Closes the engine handle if it is still open
 *	(which closes its subtree in the engine), then deletes the commands
 *	of its children, so that [info commands] tells the truth.
 */
static void
HandleDeleteProc(ClientData clientData)
{
    HsmHandle *h = clientData, *c;

    h->deleted = 1;
    if (h->engineOpen) {
	(void) kinds[h->kind].close(h->hdl);
	MarkClosed(h);
    }
    while ((c = h->children) != NULL) {
	Unlink(c);
	if (!c->deleted) {
	    Tcl_DeleteCommandFromToken(h->interp, c->token);
	}
    }
    Unlink(h);
    Tcl_EventuallyFree(h, TCL_DYNAMIC);
}

/*
 * HandleObjCmd --
 *	The command of a handle: "$handle method ?-option value ...?".  The
 *	struct is preserved across the method, which may delete the command.
 */
static int
HandleObjCmd(ClientData clientData, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    HsmHandle *h = clientData;
    const Method *methods = kinds[h->kind].methods;
    int idx, code;

    if (objc < 2) {
	Tcl_WrongNumArgs(interp, 1, objv, "subcommand ?-option value ...?");
	return TCL_ERROR;
    }
    if (Tcl_GetIndexFromObjStruct(interp, objv[1], methods, sizeof(Method),
	    "subcommand", 0, &idx) != TCL_OK) {
	return UnknownWord(interp, objv[1]);
    }
    Tcl_Preserve(h);
    code = methods[idx].proc(h, interp, objc, objv);
    Tcl_Release(h);
    return code;
}

/*
 * NewHandle --
 *	Creates the command of a handle the engine just opened, under parent
 *	(NULL for a session), and sets it as the result.  The name is
 *	::spps::hsm::<kind>N with N counted per interpreter, skipping names
 *	a script may have taken.
 */
static int
NewHandle(Tcl_Interp *interp, HandleKind kind, hsm_hdl_t hdl,
	HsmHandle *parent)
{
    HsmInterp *hi = GetHsmInterp(interp);
    HsmHandle *h;
    Tcl_Obj *name = NULL;

    do {
	if (name != NULL) {
	    Tcl_DecrRefCount(name);
	}
	name = Tcl_ObjPrintf("::spps::hsm::%s%lu", kinds[kind].prefix,
		++hi->counter[kind]);
	Tcl_IncrRefCount(name);
    } while (Tcl_FindCommand(interp, Tcl_GetString(name), NULL,
	    TCL_GLOBAL_ONLY) != NULL);

    h = (HsmHandle *) Tcl_Alloc(sizeof(HsmHandle));
    memset(h, 0, sizeof(HsmHandle));
    h->interp = interp;
    h->kind = kind;
    h->hdl = hdl;
    h->engineOpen = 1;
    if (parent != NULL) {
	h->parent = parent;
	h->nextSibling = parent->children;
	if (parent->children != NULL) {
	    parent->children->prevSibling = h;
	}
	parent->children = h;
    }
    h->token = Tcl_CreateObjCommand(interp, Tcl_GetString(name),
	    HandleObjCmd, h, HandleDeleteProc);
    Tcl_SetObjResult(interp, name);
    Tcl_DecrRefCount(name);
    return TCL_OK;
}

/*
 * $handle close --
 *	Closes the engine handle (and so its subtree) and deletes the
 *	commands of the subtree.  The commands go even if the engine reports
 *	an error: the handle is unusable either way.
 */
static int
CloseMethod(HsmHandle *h, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    hsm_err_t err = HSM_NO_ERROR;
    const char *detail;
    Tcl_Obj *saved = NULL;

    if (NoArgs(interp, objc, objv) != TCL_OK) {
	return TCL_ERROR;
    }
    if (h->engineOpen) {
	err = kinds[h->kind].close(h->hdl);
	MarkClosed(h);
	if (err != HSM_NO_ERROR) {
	    /* Keep the detail: deleting commands may call the engine. */
	    detail = hsm_spps_last_error();
	    saved = Tcl_NewStringObj(detail ? detail : "", -1);
	    Tcl_IncrRefCount(saved);
	}
    }
    Tcl_DeleteCommandFromToken(interp, h->token);
    if (err != HSM_NO_ERROR) {
	const char *name = hsm_spps_err_name(err);

	Spps_ErrorObj(interp, Tcl_ObjPrintf("HSM %s %d",
		strncmp(name, "HSM_", 4) == 0 ? name + 4 : name, (int) err),
		Tcl_ObjPrintf("close: %s", Tcl_GetString(saved)[0] != '\0'
			? Tcl_GetString(saved) : hsm_spps_err_text(err)));
	Tcl_DecrRefCount(saved);
	return TCL_ERROR;
    }
    Tcl_ResetResult(interp);
    return TCL_OK;
}

/* ------------------------------------------------------------------ */
/* Results                                                              */
/* ------------------------------------------------------------------ */

/* DictPut -- dict[key] = value (dict unshared). */
static void
DictPut(Tcl_Obj *dict, const char *key, Tcl_Obj *value)
{
    Tcl_DictObjPut(NULL, dict, Tcl_NewStringObj(key, -1), value);
}

/* WarnResult -- adds "warning HSM_KEY_STORE_COUNTER" to a result dict. */
static void
WarnResult(Tcl_Obj *dict, int warned)
{
    if (warned) {
	DictPut(dict, "warning", Tcl_NewStringObj("HSM_KEY_STORE_COUNTER", -1));
    }
}

/*
 * BytesResult --
 *	Ends a method that returns a byte array made with NewBytes (and held
 *	with one reference): on success it becomes the result.
 */
static int
BytesResult(Tcl_Interp *interp, Tcl_Obj *out, int code)
{
    if (code == TCL_OK) {
	Tcl_SetObjResult(interp, out);
    }
    Tcl_DecrRefCount(out);
    return code;
}

/* PubKeySize -- bytes of a public key x || y of a key type (0: unknown). */
static int
PubKeySize(int keyType)
{
    return 2 * EnumSize(keyTypeNames, keyType);
}

/* ------------------------------------------------------------------ */
/* Opening services                                                     */
/* ------------------------------------------------------------------ */

/*
 * OpenService --
 *	$parent open_<kind>_service: opens a service of the given kind under
 *	the handle h (a session or a key store service, as the API says) and
 *	returns the command of the new handle.  The services take no option:
 *	their flags have no defined bit.
 */
static int
OpenService(HsmHandle *h, Tcl_Interp *interp, int objc, Tcl_Obj *const objv[],
	HandleKind kind, const char *what)
{
    hsm_hdl_t svc = 0;
    hsm_err_t err = HSM_GENERAL_ERROR;

    if (NoArgs(interp, objc, objv) != TCL_OK) {
	return TCL_ERROR;
    }
    switch (kind) {
    case KIND_KEY_MANAGEMENT: {
	open_svc_key_management_args_t a;

	memset(&a, 0, sizeof(a));
	err = hsm_open_key_management_service(h->hdl, &a, &svc);
	break;
    }
    case KIND_CIPHER: {
	open_svc_cipher_args_t a;

	memset(&a, 0, sizeof(a));
	err = hsm_open_cipher_service(h->hdl, &a, &svc);
	break;
    }
    case KIND_SIGN_GEN: {
	open_svc_sign_gen_args_t a;

	memset(&a, 0, sizeof(a));
	err = hsm_open_signature_generation_service(h->hdl, &a, &svc);
	break;
    }
    case KIND_SIGN_VER: {
	open_svc_sign_ver_args_t a;

	memset(&a, 0, sizeof(a));
	err = hsm_open_signature_verification_service(h->hdl, &a, &svc);
	break;
    }
    case KIND_RNG: {
	open_svc_rng_args_t a;

	memset(&a, 0, sizeof(a));
	err = hsm_open_rng_service(h->hdl, &a, &svc);
	break;
    }
    case KIND_HASH: {
	open_svc_hash_args_t a;

	memset(&a, 0, sizeof(a));
	err = hsm_open_hash_service(h->hdl, &a, &svc);
	break;
    }
    case KIND_MAC: {
	open_svc_mac_args_t a;

	memset(&a, 0, sizeof(a));
	err = hsm_open_mac_service(h->hdl, &a, &svc);
	break;
    }
    case KIND_DATA_STORAGE: {
	open_svc_data_storage_args_t a;

	memset(&a, 0, sizeof(a));
	err = hsm_open_data_storage_service(h->hdl, &a, &svc);
	break;
    }
    default:
	break;
    }
    if (HsmCheck(interp, what, err, NULL) != TCL_OK) {
	return TCL_ERROR;
    }
    return NewHandle(interp, kind, svc, h);
}

/* $keystore open_key_management_service -- see OpenService. */
static int
OpenKeyManagementMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    return OpenService(h, interp, objc, objv, KIND_KEY_MANAGEMENT,
	    "open_key_management_service");
}

/* $keystore open_cipher_service -- see OpenService. */
static int
OpenCipherMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    return OpenService(h, interp, objc, objv, KIND_CIPHER,
	    "open_cipher_service");
}

/* $keystore open_signature_generation_service -- see OpenService. */
static int
OpenSignGenMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    return OpenService(h, interp, objc, objv, KIND_SIGN_GEN,
	    "open_signature_generation_service");
}

/* $session open_signature_verification_service -- see OpenService. */
static int
OpenSignVerMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    return OpenService(h, interp, objc, objv, KIND_SIGN_VER,
	    "open_signature_verification_service");
}

/* $session open_rng_service -- see OpenService. */
static int
OpenRngMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    return OpenService(h, interp, objc, objv, KIND_RNG, "open_rng_service");
}

/* $session open_hash_service -- see OpenService. */
static int
OpenHashMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    return OpenService(h, interp, objc, objv, KIND_HASH, "open_hash_service");
}

/* $keystore open_mac_service -- see OpenService. */
static int
OpenMacMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    return OpenService(h, interp, objc, objv, KIND_MAC, "open_mac_service");
}

/* $keystore open_data_storage_service -- see OpenService. */
static int
OpenDataStorageMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    return OpenService(h, interp, objc, objv, KIND_DATA_STORAGE,
	    "open_data_storage_service");
}

/* ------------------------------------------------------------------ */
/* Session methods                                                      */
/* ------------------------------------------------------------------ */

/*
 * $session open_key_store_service -key_store_identifier id
 *	-authentication_nonce n ?-max_updates_number n? ?-create? ?-update?
 *	?-delete? ?-signed_message bytes?
 * Returns the command of the key store service.
 */
static int
OpenKeyStoreMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-key_store_identifier", OT_UINT, U32_MAX_, NULL, 1},
	{"-authentication_nonce", OT_UINT, U32_MAX_, NULL, 1},
	{"-max_updates_number", OT_UINT, U16_MAX_, NULL, 0},
	{"-signed_message", OT_BYTES, U16_MAX_, NULL, 0},
	{"-create", OT_FLAG, 0, NULL, 0},
	{"-update", OT_FLAG, 0, NULL, 0},
	{"-delete", OT_FLAG, 0, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { KS_ID, KS_NONCE, KS_MAX, KS_SIGNED, KS_CREATE, KS_UPDATE, KS_DELETE };
    OptVal v[MAX_OPTS];
    open_svc_key_store_args_t args;
    hsm_hdl_t ks = 0;
    hsm_err_t err;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    memset(&args, 0, sizeof(args));
    args.key_store_identifier = (uint32_t) v[KS_ID].num;
    args.authentication_nonce = (uint32_t) v[KS_NONCE].num;
    args.max_updates_number = (uint16_t) v[KS_MAX].num;
    args.flags = (hsm_svc_key_store_flags_t) (
	    Flag(&v[KS_CREATE], HSM_SVC_KEY_STORE_FLAGS_CREATE)
	    | Flag(&v[KS_UPDATE], HSM_SVC_KEY_STORE_FLAGS_UPDATE)
	    | Flag(&v[KS_DELETE], HSM_SVC_KEY_STORE_FLAGS_DELETE));
    if (v[KS_SIGNED].given) {
	args.signed_message = (uint8_t *) v[KS_SIGNED].bytes;
	args.signed_msg_size = (uint16_t) v[KS_SIGNED].len;
    }
    err = hsm_open_key_store_service(h->hdl, &args, &ks);
    if (HsmCheck(interp, "open_key_store_service", err, NULL) != TCL_OK) {
	return TCL_ERROR;
    }
    return NewHandle(interp, KIND_KEY_STORE, ks, h);
}

/*
 * $session pub_key_reconstruction -pub_rec bytes -hash bytes -ca_key bytes
 *	-key_type type
 * Returns the public key x || y: pub_rec * hash + ca_key.
 */
static int
PubKeyReconstructionMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-pub_rec", OT_BYTES, U16_MAX_, NULL, 1},
	{"-hash", OT_BYTES, U16_MAX_, NULL, 1},
	{"-ca_key", OT_BYTES, U16_MAX_, NULL, 1},
	{"-key_type", OT_ENUM, U8_MAX_, keyTypeNames, 1},
	{NULL, 0, 0, NULL, 0}
    };
    enum { PR_PUB_REC, PR_HASH, PR_CA_KEY, PR_KEY_TYPE };
    OptVal v[MAX_OPTS];
    op_pub_key_rec_args_t args;
    unsigned char *outBytes;
    Tcl_Obj *out;
    int size;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    size = PubKeySize((int) v[PR_KEY_TYPE].num);
    out = NewBytes(size, &outBytes);
    Tcl_IncrRefCount(out);
    memset(&args, 0, sizeof(args));
    args.pub_rec = (uint8_t *) v[PR_PUB_REC].bytes;
    args.pub_rec_size = (uint16_t) v[PR_PUB_REC].len;
    args.hash = (uint8_t *) v[PR_HASH].bytes;
    args.hash_size = (uint16_t) v[PR_HASH].len;
    args.ca_key = (uint8_t *) v[PR_CA_KEY].bytes;
    args.ca_key_size = (uint16_t) v[PR_CA_KEY].len;
    args.out_key = outBytes;
    args.out_key_size = (uint16_t) size;
    args.key_type = (hsm_key_type_t) v[PR_KEY_TYPE].num;
    return BytesResult(interp, out, HsmCheck(interp, "pub_key_reconstruction",
	    hsm_pub_key_reconstruction(h->hdl, &args), NULL));
}

/*
 * $session pub_key_decompression -key bytes -key_type type
 * Returns x || y from x || lsb_y.
 */
static int
PubKeyDecompressionMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-key", OT_BYTES, U16_MAX_, NULL, 1},
	{"-key_type", OT_ENUM, U8_MAX_, keyTypeNames, 1},
	{NULL, 0, 0, NULL, 0}
    };
    enum { PD_KEY, PD_KEY_TYPE };
    OptVal v[MAX_OPTS];
    op_pub_key_dec_args_t args;
    unsigned char *outBytes;
    Tcl_Obj *out;
    int size;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    size = PubKeySize((int) v[PD_KEY_TYPE].num);
    out = NewBytes(size, &outBytes);
    Tcl_IncrRefCount(out);
    memset(&args, 0, sizeof(args));
    args.key = (uint8_t *) v[PD_KEY].bytes;
    args.key_size = (uint16_t) v[PD_KEY].len;
    args.out_key = outBytes;
    args.out_key_size = (uint16_t) size;
    args.key_type = (hsm_key_type_t) v[PD_KEY_TYPE].num;
    return BytesResult(interp, out, HsmCheck(interp, "pub_key_decompression",
	    hsm_pub_key_decompression(h->hdl, &args), NULL));
}

/*
 * $session ecies_encryption -input bytes -pub_key bytes -p1 bytes
 *	?-p2 bytes? -key_type type ?-mac_size n?
 * Returns the VCT: V (the ephemeral public key) || C || T.  mac_size is
 * 16 unless given.
 */
static int
EciesEncryptionMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-input", OT_BYTES, BYTES_MAX, NULL, 1},
	{"-pub_key", OT_BYTES, U16_MAX_, NULL, 1},
	{"-p1", OT_BYTES, U16_MAX_, NULL, 0},
	{"-p2", OT_BYTES, U16_MAX_, NULL, 0},
	{"-key_type", OT_ENUM, U8_MAX_, keyTypeNames, 1},
	{"-mac_size", OT_UINT, U16_MAX_, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { EE_INPUT, EE_PUB_KEY, EE_P1, EE_P2, EE_KEY_TYPE, EE_MAC_SIZE };
    OptVal v[MAX_OPTS];
    op_ecies_enc_args_t args;
    unsigned char *outBytes;
    Tcl_Obj *out;
    Tcl_WideInt size, macSize;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    macSize = v[EE_MAC_SIZE].given ? v[EE_MAC_SIZE].num : 16;
    size = PubKeySize((int) v[EE_KEY_TYPE].num) + (Tcl_WideInt) v[EE_INPUT].len
	    + macSize;
    if (size > BYTES_MAX) {
	return OptionError(interp, "VALUE", "-input", Tcl_ObjPrintf(
		"-input: %d bytes is too long for an ECIES output", v[EE_INPUT].len));
    }
    out = NewBytes((int) size, &outBytes);
    Tcl_IncrRefCount(out);
    memset(&args, 0, sizeof(args));
    args.input = (uint8_t *) v[EE_INPUT].bytes;
    args.input_size = (uint32_t) v[EE_INPUT].len;
    args.pub_key = (uint8_t *) v[EE_PUB_KEY].bytes;
    args.pub_key_size = (uint16_t) v[EE_PUB_KEY].len;
    if (v[EE_P1].given) {
	args.p1 = (uint8_t *) v[EE_P1].bytes;
	args.p1_size = (uint16_t) v[EE_P1].len;
    }
    if (v[EE_P2].given) {
	args.p2 = (uint8_t *) v[EE_P2].bytes;
	args.p2_size = (uint16_t) v[EE_P2].len;
    }
    args.mac_size = (uint16_t) macSize;
    args.output = outBytes;
    args.out_size = (uint32_t) size;
    args.key_type = (hsm_key_type_t) v[EE_KEY_TYPE].num;
    return BytesResult(interp, out, HsmCheck(interp, "ecies_encryption",
	    hsm_ecies_encryption(h->hdl, &args), NULL));
}

/*
 * $session export_root_key_encryption_key ?-signed_message bytes?
 *	?-common_kek | -unique_kek?
 * Returns the 32-byte root KEK (the part-unique one unless -common_kek).
 */
static int
ExportRootKekMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-signed_message", OT_BYTES, U16_MAX_, NULL, 0},
	{"-common_kek", OT_FLAG, 0, NULL, 0},
	{"-unique_kek", OT_FLAG, 0, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { EK_SIGNED, EK_COMMON, EK_UNIQUE };
    OptVal v[MAX_OPTS];
    op_export_root_kek_args_t args;
    unsigned char *outBytes;
    Tcl_Obj *out;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK
	    || Exclusive(interp, specs, v, EK_COMMON, EK_UNIQUE) != TCL_OK) {
	return TCL_ERROR;
    }
    out = NewBytes(32, &outBytes);
    Tcl_IncrRefCount(out);
    memset(&args, 0, sizeof(args));
    if (v[EK_SIGNED].given) {
	args.signed_message = (uint8_t *) v[EK_SIGNED].bytes;
	args.signed_msg_size = (uint16_t) v[EK_SIGNED].len;
    }
    args.out_root_kek = outBytes;
    args.root_kek_size = 32;
    args.flags = (hsm_op_export_root_kek_flags_t)
	    Flag(&v[EK_COMMON], HSM_OP_EXPORT_ROOT_KEK_FLAGS_COMMON_KEK);
    return BytesResult(interp, out, HsmCheck(interp,
	    "export_root_key_encryption_key",
	    hsm_export_root_key_encryption_key(h->hdl, &args), NULL));
}

/*
 * $session get_info
 * Returns a dict of every field of op_get_info_args_t: user_sab_id,
 * chip_unique_id (8 bytes), chip_monotonic_counter, chip_life_cycle,
 * version, version_ext, fips_mode.
 */
static int
GetInfoMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    op_get_info_args_t args;
    uint32_t userSabId = 0, version = 0, versionExt = 0;
    uint8_t chipId[8], fipsMode = 0;
    uint16_t counter = 0, lifeCycle = 0;
    Tcl_Obj *dict;

    if (NoArgs(interp, objc, objv) != TCL_OK) {
	return TCL_ERROR;
    }
    memset(chipId, 0, sizeof(chipId));
    args.user_sab_id = &userSabId;
    args.chip_unique_id = chipId;
    args.chip_monotonic_counter = &counter;
    args.chip_life_cycle = &lifeCycle;
    args.version = &version;
    args.version_ext = &versionExt;
    args.fips_mode = &fipsMode;
    if (HsmCheck(interp, "get_info", hsm_get_info(h->hdl, &args), NULL)
	    != TCL_OK) {
	return TCL_ERROR;
    }
    dict = Tcl_NewDictObj();
    DictPut(dict, "user_sab_id", Tcl_NewWideIntObj(userSabId));
    DictPut(dict, "chip_unique_id", Tcl_NewByteArrayObj(chipId, 8));
    DictPut(dict, "chip_monotonic_counter", Tcl_NewIntObj(counter));
    DictPut(dict, "chip_life_cycle", Tcl_NewIntObj(lifeCycle));
    DictPut(dict, "version", Tcl_NewWideIntObj(version));
    DictPut(dict, "version_ext", Tcl_NewWideIntObj(versionExt));
    DictPut(dict, "fips_mode", Tcl_NewIntObj(fipsMode));
    Tcl_SetObjResult(interp, dict);
    return TCL_OK;
}

/*
 * $session spps_close_lifecycle -owner_xy bytes
 * The engine's extension hsm_spps_close_lifecycle: moves the HSM from
 * OEM_OPEN to OEM_CLOSED for good, with the owner's P-256 public key
 * (x || y); from then on export_root_key_encryption_key needs the owner's
 * signature as -signed_message.  Returns nothing.
 */
static int
CloseLifecycleMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-owner_xy", OT_BYTES, U16_MAX_, NULL, 1},
	{NULL, 0, 0, NULL, 0}
    };
    enum { CL_OWNER };
    OptVal v[MAX_OPTS];

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (HsmCheck(interp, "spps_close_lifecycle", hsm_spps_close_lifecycle(
	    h->hdl, v[CL_OWNER].bytes, (size_t) v[CL_OWNER].len), NULL)
	    != TCL_OK) {
	return TCL_ERROR;
    }
    Tcl_ResetResult(interp);
    return TCL_OK;
}

/* ------------------------------------------------------------------ */
/* Key store methods                                                    */
/* ------------------------------------------------------------------ */

/*
 * $keystore pub_key_recovery -key_identifier id -key_type type
 * Returns the public key x || y of a private key of the key store.
 */
static int
PubKeyRecoveryMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-key_identifier", OT_UINT, U32_MAX_, NULL, 1},
	{"-key_type", OT_ENUM, U8_MAX_, keyTypeNames, 1},
	{NULL, 0, 0, NULL, 0}
    };
    enum { RC_KEY_ID, RC_KEY_TYPE };
    OptVal v[MAX_OPTS];
    op_pub_key_recovery_args_t args;
    unsigned char *outBytes;
    Tcl_Obj *out;
    int size;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    size = PubKeySize((int) v[RC_KEY_TYPE].num);
    out = NewBytes(size, &outBytes);
    Tcl_IncrRefCount(out);
    memset(&args, 0, sizeof(args));
    args.key_identifier = (uint32_t) v[RC_KEY_ID].num;
    args.out_key = outBytes;
    args.out_key_size = (uint16_t) size;
    args.key_type = (hsm_key_type_t) v[RC_KEY_TYPE].num;
    return BytesResult(interp, out, HsmCheck(interp, "pub_key_recovery",
	    hsm_pub_key_recovery(h->hdl, &args), NULL));
}

/* ------------------------------------------------------------------ */
/* Key management methods                                               */
/* ------------------------------------------------------------------ */

/*
 * KeyResult --
 *	The result of a command that creates or changes a key: a dict with
 *	key_identifier, public_key when pub is not NULL (empty for AES
 *	keys), and warning HSM_KEY_STORE_COUNTER when the engine warned.
 */
static void
KeyResult(Tcl_Interp *interp, uint32_t keyId, Tcl_Obj *pub, int warned)
{
    Tcl_Obj *dict = Tcl_NewDictObj();

    DictPut(dict, "key_identifier", Tcl_NewWideIntObj(keyId));
    if (pub != NULL) {
	DictPut(dict, "public_key", pub);
    }
    WarnResult(dict, warned);
    Tcl_SetObjResult(interp, dict);
}

/*
 * $km generate_key -key_type type ?-key_identifier id? ?-key_group g?
 *	?-key_info info? ?-create | -update? ?-strict?
 * -create is the default when -update is not given.  Returns a dict:
 * key_identifier, public_key (x || y; empty for AES keys), and warning
 * if the key store's counter is used up.
 */
static int
GenerateKeyMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-key_identifier", OT_UINT, U32_MAX_, NULL, 0},
	{"-key_type", OT_ENUM, U8_MAX_, keyTypeNames, 1},
	{"-key_group", OT_UINT, U16_MAX_, NULL, 0},
	{"-key_info", OT_KEYINFO, 0, NULL, 0},
	{"-create", OT_FLAG, 0, NULL, 0},
	{"-update", OT_FLAG, 0, NULL, 0},
	{"-strict", OT_FLAG, 0, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { GK_KEY_ID, GK_KEY_TYPE, GK_GROUP, GK_INFO, GK_CREATE, GK_UPDATE,
	   GK_STRICT };
    OptVal v[MAX_OPTS];
    op_generate_key_args_t args;
    unsigned char *outBytes;
    uint32_t keyId;
    Tcl_Obj *out;
    int size, warned;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    size = PubKeySize((int) v[GK_KEY_TYPE].num);
    out = NewBytes(size, &outBytes);
    Tcl_IncrRefCount(out);
    keyId = (uint32_t) v[GK_KEY_ID].num;
    memset(&args, 0, sizeof(args));
    args.key_identifier = &keyId;
    args.out_size = (uint16_t) size;
    args.out_key = size > 0 ? outBytes : NULL;
    args.key_type = (hsm_key_type_t) v[GK_KEY_TYPE].num;
    args.key_group = (hsm_key_group_t) v[GK_GROUP].num;
    args.key_info = (hsm_key_info_t) v[GK_INFO].num;
    args.flags = (hsm_op_key_gen_flags_t) (
	    Flag(&v[GK_CREATE], HSM_OP_KEY_GENERATION_FLAGS_CREATE)
	    | Flag(&v[GK_UPDATE], HSM_OP_KEY_GENERATION_FLAGS_UPDATE)
	    | Flag(&v[GK_STRICT], HSM_OP_KEY_GENERATION_FLAGS_STRICT_OPERATION));
    if (!v[GK_CREATE].given && !v[GK_UPDATE].given) {
	args.flags |= HSM_OP_KEY_GENERATION_FLAGS_CREATE;
    }
    if (HsmCheck(interp, "generate_key", hsm_generate_key(h->hdl, &args),
	    &warned) != TCL_OK) {
	Tcl_DecrRefCount(out);
	return TCL_ERROR;
    }
    KeyResult(interp, keyId, out, warned);
    Tcl_DecrRefCount(out);
    return TCL_OK;
}

/*
 * $km manage_key ?-key_identifier id? ?-kek_identifier id?
 *	?-input_data bytes? ?-key_type type? ?-key_group g? ?-key_info info?
 *	?-create | -update | -delete? ?-part_unique_root_kek?
 *	?-common_root_kek? ?-strict?
 * Imports a key wrapped as IV || AES-GCM(KEK, key) || tag (see
 * "spps::hsm wrap_key"), or deletes one.  -create is the default when
 * neither -update nor -delete is given.  Returns a dict: key_identifier,
 * and warning if the key store's counter is used up.
 */
static int
ManageKeyMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-key_identifier", OT_UINT, U32_MAX_, NULL, 0},
	{"-kek_identifier", OT_UINT, U32_MAX_, NULL, 0},
	{"-input_data", OT_BYTES, U16_MAX_, NULL, 0},
	{"-key_type", OT_ENUM, U8_MAX_, keyTypeNames, 0},
	{"-key_group", OT_UINT, U16_MAX_, NULL, 0},
	{"-key_info", OT_KEYINFO, 0, NULL, 0},
	{"-create", OT_FLAG, 0, NULL, 0},
	{"-update", OT_FLAG, 0, NULL, 0},
	{"-delete", OT_FLAG, 0, NULL, 0},
	{"-part_unique_root_kek", OT_FLAG, 0, NULL, 0},
	{"-common_root_kek", OT_FLAG, 0, NULL, 0},
	{"-strict", OT_FLAG, 0, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { MK_KEY_ID, MK_KEK_ID, MK_INPUT, MK_KEY_TYPE, MK_GROUP, MK_INFO,
	   MK_CREATE, MK_UPDATE, MK_DELETE, MK_PART_UNIQUE, MK_COMMON,
	   MK_STRICT };
    OptVal v[MAX_OPTS];
    op_manage_key_args_t args;
    uint32_t keyId;
    int warned;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    keyId = (uint32_t) v[MK_KEY_ID].num;
    memset(&args, 0, sizeof(args));
    args.key_identifier = &keyId;
    args.kek_identifier = (uint32_t) v[MK_KEK_ID].num;
    if (v[MK_INPUT].given) {
	args.input_data = (uint8_t *) v[MK_INPUT].bytes;
	args.input_size = (uint16_t) v[MK_INPUT].len;
    }
    args.key_type = (hsm_key_type_t) v[MK_KEY_TYPE].num;
    args.key_group = (hsm_key_group_t) v[MK_GROUP].num;
    args.key_info = (hsm_key_info_t) v[MK_INFO].num;
    args.flags = (hsm_op_manage_key_flags_t) (
	    Flag(&v[MK_CREATE], HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE)
	    | Flag(&v[MK_UPDATE], HSM_OP_MANAGE_KEY_FLAGS_IMPORT_UPDATE)
	    | Flag(&v[MK_DELETE], HSM_OP_MANAGE_KEY_FLAGS_DELETE)
	    | Flag(&v[MK_PART_UNIQUE], HSM_OP_MANAGE_KEY_FLAGS_PART_UNIQUE_ROOT_KEK)
	    | Flag(&v[MK_COMMON], HSM_OP_MANAGE_KEY_FLAGS_COMMON_ROOT_KEK)
	    | Flag(&v[MK_STRICT], HSM_OP_MANAGE_KEY_FLAGS_STRICT_OPERATION));
    if (!v[MK_CREATE].given && !v[MK_UPDATE].given && !v[MK_DELETE].given) {
	args.flags |= HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE;
    }
    if (HsmCheck(interp, "manage_key", hsm_manage_key(h->hdl, &args),
	    &warned) != TCL_OK) {
	return TCL_ERROR;
    }
    KeyResult(interp, keyId, NULL, warned);
    return TCL_OK;
}

/*
 * $km manage_key_group -key_group g ?-lockdown | -unlock? ?-delete?
 *	?-strict?
 * Returns a dict: empty, or warning if the key store's counter is used
 * up.
 */
static int
ManageKeyGroupMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-key_group", OT_UINT, U16_MAX_, NULL, 1},
	{"-lockdown", OT_FLAG, 0, NULL, 0},
	{"-unlock", OT_FLAG, 0, NULL, 0},
	{"-delete", OT_FLAG, 0, NULL, 0},
	{"-strict", OT_FLAG, 0, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { MG_GROUP, MG_LOCKDOWN, MG_UNLOCK, MG_DELETE, MG_STRICT };
    OptVal v[MAX_OPTS];
    op_manage_key_group_args_t args;
    Tcl_Obj *dict;
    int warned;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    memset(&args, 0, sizeof(args));
    args.key_group = (hsm_key_group_t) v[MG_GROUP].num;
    args.flags = (hsm_op_manage_key_group_flags_t) (
	    Flag(&v[MG_LOCKDOWN], HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_LOCKDOWN)
	    | Flag(&v[MG_UNLOCK], HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_UNLOCK)
	    | Flag(&v[MG_DELETE], HSM_OP_MANAGE_KEY_GROUP_FLAGS_DELETE)
	    | Flag(&v[MG_STRICT], HSM_OP_MANAGE_KEY_GROUP_FLAGS_STRICT_OPERATION));
    if (HsmCheck(interp, "manage_key_group",
	    hsm_manage_key_group(h->hdl, &args), &warned) != TCL_OK) {
	return TCL_ERROR;
    }
    dict = Tcl_NewDictObj();
    WarnResult(dict, warned);
    Tcl_SetObjResult(interp, dict);
    return TCL_OK;
}

/*
 * $km butterfly_key_expansion -key_identifier id
 *	-expansion_function_value bytes ?-hash_value bytes?
 *	?-pr_reconstruction_value bytes? -key_type type
 *	?-dest_key_identifier id? ?-key_group g? ?-key_info info?
 *	?-explicit | -implicit? ?-create | -update? ?-strict?
 * -implicit and -create are the defaults.  Returns a dict:
 * key_identifier (the derived key), public_key (x || y), and warning if
 * the key store's counter is used up.
 */
static int
ButterflyMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-key_identifier", OT_UINT, U32_MAX_, NULL, 1},
	{"-expansion_function_value", OT_BYTES, U8_MAX_, NULL, 1},
	{"-hash_value", OT_BYTES, U8_MAX_, NULL, 0},
	{"-pr_reconstruction_value", OT_BYTES, U8_MAX_, NULL, 0},
	{"-dest_key_identifier", OT_UINT, U32_MAX_, NULL, 0},
	{"-key_type", OT_ENUM, U8_MAX_, keyTypeNames, 1},
	{"-key_group", OT_UINT, U16_MAX_, NULL, 0},
	{"-key_info", OT_KEYINFO, 0, NULL, 0},
	{"-explicit", OT_FLAG, 0, NULL, 0},
	{"-implicit", OT_FLAG, 0, NULL, 0},
	{"-create", OT_FLAG, 0, NULL, 0},
	{"-update", OT_FLAG, 0, NULL, 0},
	{"-strict", OT_FLAG, 0, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { BK_KEY_ID, BK_EXPANSION, BK_HASH, BK_PR_REC, BK_DEST, BK_KEY_TYPE,
	   BK_GROUP, BK_INFO, BK_EXPLICIT, BK_IMPLICIT, BK_CREATE, BK_UPDATE,
	   BK_STRICT };
    OptVal v[MAX_OPTS];
    op_butt_key_exp_args_t args;
    unsigned char *outBytes;
    uint32_t destId;
    Tcl_Obj *out;
    int size, warned;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK
	    || Exclusive(interp, specs, v, BK_EXPLICIT, BK_IMPLICIT) != TCL_OK) {
	return TCL_ERROR;
    }
    size = PubKeySize((int) v[BK_KEY_TYPE].num);
    out = NewBytes(size, &outBytes);
    Tcl_IncrRefCount(out);
    destId = (uint32_t) v[BK_DEST].num;
    memset(&args, 0, sizeof(args));
    args.key_identifier = (uint32_t) v[BK_KEY_ID].num;
    args.expansion_function_value = (uint8_t *) v[BK_EXPANSION].bytes;
    args.expansion_function_value_size = (uint8_t) v[BK_EXPANSION].len;
    if (v[BK_HASH].given) {
	args.hash_value = (uint8_t *) v[BK_HASH].bytes;
	args.hash_value_size = (uint8_t) v[BK_HASH].len;
    }
    if (v[BK_PR_REC].given) {
	args.pr_reconstruction_value = (uint8_t *) v[BK_PR_REC].bytes;
	args.pr_reconstruction_value_size = (uint8_t) v[BK_PR_REC].len;
    }
    args.dest_key_identifier = &destId;
    args.output = size > 0 ? outBytes : NULL;
    args.output_size = (uint16_t) size;
    args.key_type = (hsm_key_type_t) v[BK_KEY_TYPE].num;
    args.key_group = (hsm_key_group_t) v[BK_GROUP].num;
    args.key_info = (hsm_key_info_t) v[BK_INFO].num;
    args.flags = (hsm_op_but_key_exp_flags_t) (
	    Flag(&v[BK_EXPLICIT], HSM_OP_BUTTERFLY_KEY_FLAGS_EXPLICIT_CERTIF)
	    | Flag(&v[BK_CREATE], HSM_OP_BUTTERFLY_KEY_FLAGS_CREATE)
	    | Flag(&v[BK_UPDATE], HSM_OP_BUTTERFLY_KEY_FLAGS_UPDATE)
	    | Flag(&v[BK_STRICT], HSM_OP_BUTTERFLY_KEY_FLAGS_STRICT_OPERATION));
    if (!v[BK_CREATE].given && !v[BK_UPDATE].given) {
	args.flags |= HSM_OP_BUTTERFLY_KEY_FLAGS_CREATE;
    }
    if (HsmCheck(interp, "butterfly_key_expansion",
	    hsm_butterfly_key_expansion(h->hdl, &args), &warned) != TCL_OK) {
	Tcl_DecrRefCount(out);
	return TCL_ERROR;
    }
    KeyResult(interp, destId, out, warned);
    Tcl_DecrRefCount(out);
    return TCL_OK;
}

/* ------------------------------------------------------------------ */
/* Cipher methods                                                       */
/* ------------------------------------------------------------------ */

/*
 * Direction --
 *	The direction of a cipher operation: exactly one of the two options
 *	(encrypt, decrypt) must be given, since a default would decrypt.
 *	Sets *encrypt.
 */
static int
Direction(Tcl_Interp *interp, const OptSpec *specs, const OptVal *vals,
	int enc, int dec, int *encrypt)
{
    int e = vals[enc].given && vals[enc].num;
    int d = vals[dec].given && vals[dec].num;

    if (e && d) {
	return Exclusive(interp, specs, vals, enc, dec);
    }
    if (!e && !d) {
	return OptionError(interp, "MISSING", specs[enc].name, Tcl_ObjPrintf(
		"one of the options \"%s\" and \"%s\" is required",
		specs[enc].name, specs[dec].name));
    }
    *encrypt = e;
    return TCL_OK;
}

/*
 * $cipher cipher_one_go -key_identifier id -cipher_algo algo
 *	?-iv bytes? -input bytes -encrypt|-decrypt
 * Returns the output: as long as the input for ECB and CBC (no padding),
 * ciphertext || tag (16 bytes) for CCM encryption.
 */
static int
CipherOneGoMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-key_identifier", OT_UINT, U32_MAX_, NULL, 1},
	{"-cipher_algo", OT_ENUM, U8_MAX_, cipherAlgoNames, 1},
	{"-iv", OT_BYTES, U16_MAX_, NULL, 0},
	{"-input", OT_BYTES, BYTES_MAX - 16, NULL, 1},
	{"-encrypt", OT_FLAG, 0, NULL, 0},
	{"-decrypt", OT_FLAG, 0, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { CO_KEY_ID, CO_ALGO, CO_IV, CO_INPUT, CO_ENCRYPT, CO_DECRYPT };
    OptVal v[MAX_OPTS];
    op_cipher_one_go_args_t args;
    unsigned char *outBytes;
    Tcl_Obj *out;
    int encrypt, size;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK
	    || Direction(interp, specs, v, CO_ENCRYPT, CO_DECRYPT, &encrypt)
		!= TCL_OK) {
	return TCL_ERROR;
    }
    size = v[CO_INPUT].len;
    if (v[CO_ALGO].num == HSM_CIPHER_ONE_GO_ALGO_AES_CCM) {
	size = encrypt ? size + 16 : (size >= 16 ? size - 16 : 0);
    }
    out = NewBytes(size, &outBytes);
    Tcl_IncrRefCount(out);
    memset(&args, 0, sizeof(args));
    args.key_identifier = (uint32_t) v[CO_KEY_ID].num;
    if (v[CO_IV].given) {
	args.iv = (uint8_t *) v[CO_IV].bytes;
	args.iv_size = (uint16_t) v[CO_IV].len;
    }
    args.cipher_algo = (hsm_op_cipher_one_go_algo_t) v[CO_ALGO].num;
    args.flags = encrypt ? HSM_CIPHER_ONE_GO_FLAGS_ENCRYPT
	    : HSM_CIPHER_ONE_GO_FLAGS_DECRYPT;
    args.input = (uint8_t *) v[CO_INPUT].bytes;
    args.input_size = (uint32_t) v[CO_INPUT].len;
    args.output = outBytes;
    args.output_size = (uint32_t) size;
    return BytesResult(interp, out, HsmCheck(interp, "cipher_one_go",
	    hsm_cipher_one_go(h->hdl, &args), NULL));
}

/*
 * $cipher auth_enc -key_identifier id -iv bytes ?-aad bytes? -input bytes
 *	-encrypt|-decrypt ?-ae_algo AES_GCM?
 * Returns ciphertext || tag (16 bytes) when encrypting, the plaintext when
 * decrypting (an error if the tag does not verify).
 */
static int
AuthEncMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-key_identifier", OT_UINT, U32_MAX_, NULL, 1},
	{"-iv", OT_BYTES, U16_MAX_, NULL, 0},
	{"-aad", OT_BYTES, U16_MAX_, NULL, 0},
	{"-input", OT_BYTES, BYTES_MAX - 16, NULL, 1},
	{"-ae_algo", OT_ENUM, U8_MAX_, aeAlgoNames, 0},
	{"-encrypt", OT_FLAG, 0, NULL, 0},
	{"-decrypt", OT_FLAG, 0, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { AE_KEY_ID, AE_IV, AE_AAD, AE_INPUT, AE_ALGO, AE_ENCRYPT,
	   AE_DECRYPT };
    OptVal v[MAX_OPTS];
    op_auth_enc_args_t args;
    unsigned char *outBytes;
    Tcl_Obj *out;
    int encrypt, size;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK
	    || Direction(interp, specs, v, AE_ENCRYPT, AE_DECRYPT, &encrypt)
		!= TCL_OK) {
	return TCL_ERROR;
    }
    size = v[AE_INPUT].len;
    size = encrypt ? size + 16 : (size >= 16 ? size - 16 : 0);
    out = NewBytes(size, &outBytes);
    Tcl_IncrRefCount(out);
    memset(&args, 0, sizeof(args));
    args.key_identifier = (uint32_t) v[AE_KEY_ID].num;
    if (v[AE_IV].given) {
	args.iv = (uint8_t *) v[AE_IV].bytes;
	args.iv_size = (uint16_t) v[AE_IV].len;
    }
    if (v[AE_AAD].given) {
	args.aad = (uint8_t *) v[AE_AAD].bytes;
	args.aad_size = (uint16_t) v[AE_AAD].len;
    }
    args.ae_algo = (hsm_op_auth_enc_algo_t) (v[AE_ALGO].given
	    ? v[AE_ALGO].num : HSM_AUTH_ENC_ALGO_AES_GCM);
    args.flags = encrypt ? HSM_AUTH_ENC_FLAGS_ENCRYPT
	    : HSM_AUTH_ENC_FLAGS_DECRYPT;
    args.input = (uint8_t *) v[AE_INPUT].bytes;
    args.input_size = (uint32_t) v[AE_INPUT].len;
    args.output = outBytes;
    args.output_size = (uint32_t) size;
    return BytesResult(interp, out, HsmCheck(interp, "auth_enc",
	    hsm_auth_enc(h->hdl, &args), NULL));
}

/*
 * $cipher ecies_decryption -key_identifier id -input vct -p1 bytes
 *	?-p2 bytes? -key_type type ?-mac_size n?
 * Returns the plaintext of a VCT made by ecies_encryption.
 */
static int
EciesDecryptionMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-key_identifier", OT_UINT, U32_MAX_, NULL, 1},
	{"-input", OT_BYTES, BYTES_MAX, NULL, 1},
	{"-p1", OT_BYTES, U16_MAX_, NULL, 0},
	{"-p2", OT_BYTES, U16_MAX_, NULL, 0},
	{"-key_type", OT_ENUM, U8_MAX_, keyTypeNames, 1},
	{"-mac_size", OT_UINT, U16_MAX_, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { ED_KEY_ID, ED_INPUT, ED_P1, ED_P2, ED_KEY_TYPE, ED_MAC_SIZE };
    OptVal v[MAX_OPTS];
    op_ecies_dec_args_t args;
    unsigned char *outBytes;
    Tcl_Obj *out;
    int size, macSize;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    macSize = v[ED_MAC_SIZE].given ? (int) v[ED_MAC_SIZE].num : 16;
    size = v[ED_INPUT].len - PubKeySize((int) v[ED_KEY_TYPE].num) - macSize;
    if (size < 0) {
	size = 0;
    }
    out = NewBytes(size, &outBytes);
    Tcl_IncrRefCount(out);
    memset(&args, 0, sizeof(args));
    args.key_identifier = (uint32_t) v[ED_KEY_ID].num;
    args.input = (uint8_t *) v[ED_INPUT].bytes;
    args.input_size = (uint32_t) v[ED_INPUT].len;
    if (v[ED_P1].given) {
	args.p1 = (uint8_t *) v[ED_P1].bytes;
	args.p1_size = (uint16_t) v[ED_P1].len;
    }
    if (v[ED_P2].given) {
	args.p2 = (uint8_t *) v[ED_P2].bytes;
	args.p2_size = (uint16_t) v[ED_P2].len;
    }
    args.output = outBytes;
    args.output_size = (uint32_t) size;
    args.mac_size = (uint16_t) macSize;
    args.key_type = (hsm_key_type_t) v[ED_KEY_TYPE].num;
    return BytesResult(interp, out, HsmCheck(interp, "ecies_decryption",
	    hsm_ecies_decryption(h->hdl, &args), NULL));
}

/* ------------------------------------------------------------------ */
/* Signature methods                                                    */
/* ------------------------------------------------------------------ */

/*
 * $sg generate_signature -key_identifier id -scheme_id scheme
 *	-message bytes ?-input_message | -input_digest? ?-compressed_point?
 *	?-low_latency?
 * -input_digest is the default, as in the C API: -message is then the
 * digest.  Returns the signature r || s || Ry.
 */
static int
GenerateSignatureMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-key_identifier", OT_UINT, U32_MAX_, NULL, 1},
	{"-scheme_id", OT_ENUM, U8_MAX_, schemeNames, 1},
	{"-message", OT_BYTES, BYTES_MAX, NULL, 1},
	{"-input_message", OT_FLAG, 0, NULL, 0},
	{"-input_digest", OT_FLAG, 0, NULL, 0},
	{"-compressed_point", OT_FLAG, 0, NULL, 0},
	{"-low_latency", OT_FLAG, 0, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { GS_KEY_ID, GS_SCHEME, GS_MESSAGE, GS_INPUT_MESSAGE,
	   GS_INPUT_DIGEST, GS_COMPRESSED, GS_LOW_LATENCY };
    OptVal v[MAX_OPTS];
    op_generate_sign_args_t args;
    unsigned char *outBytes;
    Tcl_Obj *out;
    int size;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK
	    || Exclusive(interp, specs, v, GS_INPUT_MESSAGE, GS_INPUT_DIGEST)
		!= TCL_OK) {
	return TCL_ERROR;
    }
    size = 2 * EnumSize(schemeNames, (int) v[GS_SCHEME].num);
    if (size > 0) {
	size++;
    }
    out = NewBytes(size, &outBytes);
    Tcl_IncrRefCount(out);
    memset(&args, 0, sizeof(args));
    args.key_identifier = (uint32_t) v[GS_KEY_ID].num;
    args.message = (uint8_t *) v[GS_MESSAGE].bytes;
    args.message_size = (uint32_t) v[GS_MESSAGE].len;
    args.signature = outBytes;
    args.signature_size = (uint16_t) size;
    args.scheme_id = (hsm_signature_scheme_id_t) v[GS_SCHEME].num;
    args.flags = (hsm_op_generate_sign_flags_t) (
	    Flag(&v[GS_INPUT_MESSAGE], HSM_OP_GENERATE_SIGN_FLAGS_INPUT_MESSAGE)
	    | Flag(&v[GS_COMPRESSED], HSM_OP_GENERATE_SIGN_FLAGS_COMPRESSED_POINT)
	    | Flag(&v[GS_LOW_LATENCY],
		    HSM_OP_GENERATE_SIGN_FLAGS_LOW_LATENCY_SIGNATURE));
    return BytesResult(interp, out, HsmCheck(interp, "generate_signature",
	    hsm_generate_signature(h->hdl, &args), NULL));
}

/*
 * $sg prepare_signature -scheme_id scheme ?-input_message | -input_digest?
 *	?-compressed_point?
 * Returns nothing.
 */
static int
PrepareSignatureMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-scheme_id", OT_ENUM, U8_MAX_, schemeNames, 1},
	{"-input_message", OT_FLAG, 0, NULL, 0},
	{"-input_digest", OT_FLAG, 0, NULL, 0},
	{"-compressed_point", OT_FLAG, 0, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { PS_SCHEME, PS_INPUT_MESSAGE, PS_INPUT_DIGEST, PS_COMPRESSED };
    OptVal v[MAX_OPTS];
    op_prepare_sign_args_t args;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK
	    || Exclusive(interp, specs, v, PS_INPUT_MESSAGE, PS_INPUT_DIGEST)
		!= TCL_OK) {
	return TCL_ERROR;
    }
    memset(&args, 0, sizeof(args));
    args.scheme_id = (hsm_signature_scheme_id_t) v[PS_SCHEME].num;
    args.flags = (hsm_op_prepare_signature_flags_t) (
	    Flag(&v[PS_INPUT_MESSAGE], HSM_OP_PREPARE_SIGN_INPUT_MESSAGE)
	    | Flag(&v[PS_COMPRESSED], HSM_OP_PREPARE_SIGN_COMPRESSED_POINT));
    if (HsmCheck(interp, "prepare_signature",
	    hsm_prepare_signature(h->hdl, &args), NULL) != TCL_OK) {
	return TCL_ERROR;
    }
    Tcl_ResetResult(interp);
    return TCL_OK;
}

/*
 * $sv verify_signature -key key -message bytes -signature bytes
 *	-scheme_id scheme ?-input_message | -input_digest?
 *	?-compressed_point? ?-key_internal?
 * -key is the public key x || y, or with -key_internal the reference
 * returned by import_public_key.  Returns 1 if the signature verifies
 * (status HSM_VERIFICATION_STATUS_SUCCESS), else 0.
 */
static int
VerifySignatureMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-key", OT_OBJ, 0, NULL, 1},
	{"-message", OT_BYTES, BYTES_MAX, NULL, 1},
	{"-signature", OT_BYTES, U16_MAX_, NULL, 1},
	{"-scheme_id", OT_ENUM, U8_MAX_, schemeNames, 1},
	{"-input_message", OT_FLAG, 0, NULL, 0},
	{"-input_digest", OT_FLAG, 0, NULL, 0},
	{"-compressed_point", OT_FLAG, 0, NULL, 0},
	{"-key_internal", OT_FLAG, 0, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { VS_KEY, VS_MESSAGE, VS_SIGNATURE, VS_SCHEME, VS_INPUT_MESSAGE,
	   VS_INPUT_DIGEST, VS_COMPRESSED, VS_KEY_INTERNAL };
    OptVal v[MAX_OPTS];
    op_verify_sign_args_t args;
    hsm_verification_status_t status = 0;
    const unsigned char *key;
    unsigned char keyRef[4];
    int keyLen;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK
	    || Exclusive(interp, specs, v, VS_INPUT_MESSAGE, VS_INPUT_DIGEST)
		!= TCL_OK) {
	return TCL_ERROR;
    }
    if (Flag(&v[VS_KEY_INTERNAL], 1)) {
	/* The reference import_public_key gave: 4 bytes, as the engine
	 * wrote it. */
	Tcl_WideInt ref;
	uint32_t ref32;

	if (Tcl_GetWideIntFromObj(NULL, v[VS_KEY].obj, &ref) != TCL_OK
		|| ref < 0 || ref > (Tcl_WideInt) U32_MAX_) {
	    return OptionError(interp, "VALUE", "-key", Tcl_ObjPrintf(
		    "bad key \"%s\": with -key_internal it must be a key "
		    "reference returned by import_public_key",
		    Tcl_GetString(v[VS_KEY].obj)));
	}
	ref32 = (uint32_t) ref;
	memcpy(keyRef, &ref32, sizeof(keyRef));
	key = keyRef;
	keyLen = (int) sizeof(keyRef);
    } else if (GetBytes(interp, "-key", v[VS_KEY].obj, U16_MAX_, &key,
	    &keyLen) != TCL_OK) {
	return TCL_ERROR;
    }
    /* Reading -key may have converted a literal shared with -message or
     * -signature: take their bytes again (they were checked already). */
    v[VS_MESSAGE].bytes = Tcl_GetByteArrayFromObj(v[VS_MESSAGE].obj, NULL);
    v[VS_SIGNATURE].bytes = Tcl_GetByteArrayFromObj(v[VS_SIGNATURE].obj, NULL);
    memset(&args, 0, sizeof(args));
    args.key = (uint8_t *) key;
    args.key_size = (uint16_t) keyLen;
    args.message = (uint8_t *) v[VS_MESSAGE].bytes;
    args.message_size = (uint32_t) v[VS_MESSAGE].len;
    args.signature = (uint8_t *) v[VS_SIGNATURE].bytes;
    args.signature_size = (uint16_t) v[VS_SIGNATURE].len;
    args.scheme_id = (hsm_signature_scheme_id_t) v[VS_SCHEME].num;
    args.flags = (hsm_op_verify_sign_flags_t) (
	    Flag(&v[VS_INPUT_MESSAGE], HSM_OP_VERIFY_SIGN_FLAGS_INPUT_MESSAGE)
	    | Flag(&v[VS_COMPRESSED], HSM_OP_VERIFY_SIGN_FLAGS_COMPRESSED_POINT)
	    | Flag(&v[VS_KEY_INTERNAL], HSM_OP_VERIFY_SIGN_FLAGS_KEY_INTERNAL));
    if (HsmCheck(interp, "verify_signature",
	    hsm_verify_signature(h->hdl, &args, &status), NULL) != TCL_OK) {
	return TCL_ERROR;
    }
    Tcl_SetObjResult(interp, Tcl_NewBooleanObj(
	    status == HSM_VERIFICATION_STATUS_SUCCESS));
    return TCL_OK;
}

/*
 * $sv import_public_key -key bytes -key_type type
 * Returns the key reference (an integer) for verify_signature
 * -key_internal.
 */
static int
ImportPublicKeyMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-key", OT_BYTES, U16_MAX_, NULL, 1},
	{"-key_type", OT_ENUM, U8_MAX_, keyTypeNames, 1},
	{NULL, 0, 0, NULL, 0}
    };
    enum { IP_KEY, IP_KEY_TYPE };
    OptVal v[MAX_OPTS];
    op_import_public_key_args_t args;
    uint32_t ref = 0;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    memset(&args, 0, sizeof(args));
    args.key = (uint8_t *) v[IP_KEY].bytes;
    args.key_size = (uint16_t) v[IP_KEY].len;
    args.key_type = (hsm_key_type_t) v[IP_KEY_TYPE].num;
    if (HsmCheck(interp, "import_public_key",
	    hsm_import_public_key(h->hdl, &args, &ref), NULL) != TCL_OK) {
	return TCL_ERROR;
    }
    Tcl_SetObjResult(interp, Tcl_NewWideIntObj(ref));
    return TCL_OK;
}

/* ------------------------------------------------------------------ */
/* RNG, hash, MAC and data storage methods                              */
/* ------------------------------------------------------------------ */

/*
 * $rng get_random -random_size n
 * Returns n random bytes.  The buffer is allocated with a check, since n
 * comes from the script: a size the process cannot hold is an error, not
 * a panic.
 */
static int
GetRandomMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-random_size", OT_UINT, U32_MAX_, NULL, 1},
	{NULL, 0, 0, NULL, 0}
    };
    enum { GR_SIZE };
    OptVal v[MAX_OPTS];
    op_get_random_args_t args;
    unsigned char *buf;
    int size;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    if (v[GR_SIZE].num > BYTES_MAX) {
	return OptionError(interp, "VALUE", "-random_size", Tcl_ObjPrintf(
		"bad random_size \"%s\": a Tcl 8.6 byte array holds at most "
		"%d bytes", Tcl_GetString(v[GR_SIZE].obj), BYTES_MAX));
    }
    size = (int) v[GR_SIZE].num;
    buf = (unsigned char *) Tcl_AttemptAlloc((unsigned) (size > 0 ? size : 1));
    if (buf == NULL) {
	return OptionError(interp, "VALUE", "-random_size", Tcl_ObjPrintf(
		"bad random_size \"%d\": not enough memory", size));
    }
    memset(&args, 0, sizeof(args));
    args.output = buf;
    args.random_size = (uint32_t) size;
    if (HsmCheck(interp, "get_random", hsm_get_random(h->hdl, &args), NULL)
	    != TCL_OK) {
	Tcl_Free((char *) buf);
	return TCL_ERROR;
    }
    Tcl_SetObjResult(interp, Tcl_NewByteArrayObj(buf, size));
    Tcl_Free((char *) buf);
    return TCL_OK;
}

/*
 * $hash hash_one_go -algo algo -input bytes
 * Returns the digest.
 */
static int
HashOneGoMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-algo", OT_ENUM, U8_MAX_, hashAlgoNames, 1},
	{"-input", OT_BYTES, BYTES_MAX, NULL, 1},
	{NULL, 0, 0, NULL, 0}
    };
    enum { HO_ALGO, HO_INPUT };
    OptVal v[MAX_OPTS];
    op_hash_one_go_args_t args;
    unsigned char *outBytes;
    Tcl_Obj *out;
    int size;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    size = EnumSize(hashAlgoNames, (int) v[HO_ALGO].num);
    out = NewBytes(size, &outBytes);
    Tcl_IncrRefCount(out);
    memset(&args, 0, sizeof(args));
    args.input = (uint8_t *) v[HO_INPUT].bytes;
    args.input_size = (uint32_t) v[HO_INPUT].len;
    args.output = outBytes;
    args.output_size = (uint32_t) size;
    args.algo = (hsm_hash_algo_t) v[HO_ALGO].num;
    return BytesResult(interp, out, HsmCheck(interp, "hash_one_go",
	    hsm_hash_one_go(h->hdl, &args), NULL));
}

/*
 * $mac mac_one_go -key_identifier id ?-algorithm AES_CMAC? -payload bytes
 *	-generation ?-mac_size n? | -verification -mac bytes
 * Generation returns the MAC (mac_size bytes, 16 unless given);
 * verification returns 1 if -mac verifies (its length is the mac_size),
 * else 0.
 */
static int
MacOneGoMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-key_identifier", OT_UINT, U32_MAX_, NULL, 1},
	{"-algorithm", OT_ENUM, U8_MAX_, macAlgoNames, 0},
	{"-payload", OT_BYTES, U16_MAX_, NULL, 1},
	{"-mac", OT_BYTES, U16_MAX_, NULL, 0},
	{"-mac_size", OT_UINT, U16_MAX_, NULL, 0},
	{"-generation", OT_FLAG, 0, NULL, 0},
	{"-verification", OT_FLAG, 0, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { MO_KEY_ID, MO_ALGO, MO_PAYLOAD, MO_MAC, MO_MAC_SIZE, MO_GENERATION,
	   MO_VERIFICATION };
    OptVal v[MAX_OPTS];
    op_mac_one_go_args_t args;
    hsm_mac_verification_status_t status = 0;
    unsigned char *outBytes = NULL;
    Tcl_Obj *out = NULL;
    int generate;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK
	    || Direction(interp, specs, v, MO_GENERATION, MO_VERIFICATION,
		&generate) != TCL_OK) {
	return TCL_ERROR;
    }
    memset(&args, 0, sizeof(args));
    args.key_identifier = (uint32_t) v[MO_KEY_ID].num;
    args.algorithm = (hsm_op_mac_one_go_algo_t) (v[MO_ALGO].given
	    ? v[MO_ALGO].num : HSM_OP_MAC_ONE_GO_ALGO_AES_CMAC);
    args.payload = (uint8_t *) v[MO_PAYLOAD].bytes;
    args.payload_size = (uint16_t) v[MO_PAYLOAD].len;
    if (generate) {
	if (v[MO_MAC].given) {
	    return OptionError(interp, "VALUE", "-mac", Tcl_NewStringObj(
		    "option \"-mac\" is for -verification: -generation "
		    "returns the MAC", -1));
	}
	args.mac_size = (uint16_t) (v[MO_MAC_SIZE].given
		? v[MO_MAC_SIZE].num : 16);
	out = NewBytes(args.mac_size, &outBytes);
	Tcl_IncrRefCount(out);
	args.mac = outBytes;
	args.flags = HSM_OP_MAC_ONE_GO_FLAGS_MAC_GENERATION;
	return BytesResult(interp, out, HsmCheck(interp, "mac_one_go",
		hsm_mac_one_go(h->hdl, &args, &status), NULL));
    }
    if (!v[MO_MAC].given) {
	return OptionError(interp, "MISSING", "-mac", Tcl_NewStringObj(
		"option \"-mac\" is required with -verification", -1));
    }
    if (v[MO_MAC_SIZE].given && v[MO_MAC_SIZE].num != v[MO_MAC].len) {
	return OptionError(interp, "VALUE", "-mac_size", Tcl_ObjPrintf(
		"bad mac_size \"%s\": -mac has %d bytes",
		Tcl_GetString(v[MO_MAC_SIZE].obj), v[MO_MAC].len));
    }
    args.mac = (uint8_t *) v[MO_MAC].bytes;
    args.mac_size = (uint16_t) v[MO_MAC].len;
    args.flags = HSM_OP_MAC_ONE_GO_FLAGS_MAC_VERIFICATION;
    if (HsmCheck(interp, "mac_one_go", hsm_mac_one_go(h->hdl, &args, &status),
	    NULL) != TCL_OK) {
	return TCL_ERROR;
    }
    Tcl_SetObjResult(interp, Tcl_NewBooleanObj(
	    status == HSM_MAC_VERIFICATION_STATUS_SUCCESS));
    return TCL_OK;
}

/*
 * $ds data_storage -data_id id -store -data bytes
 * $ds data_storage -data_id id -retrieve ?-data_size n?
 * Store returns a dict (empty, or warning if the key store's counter is
 * used up).  Retrieve returns the data.  Without -data_size it asks the
 * engine the size first: a retrieval into no room fails with the size
 * written back in data_size (docs/ENGINE.md), then the data are read
 * into a buffer of that size.  With -data_size n, n must be at least the
 * size of the data.
 */
static int
DataStorageMethod(HsmHandle *h, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-data_id", OT_UINT, U16_MAX_, NULL, 1},
	{"-data", OT_BYTES, BYTES_MAX, NULL, 0},
	{"-data_size", OT_UINT, BYTES_MAX, NULL, 0},
	{"-store", OT_FLAG, 0, NULL, 0},
	{"-retrieve", OT_FLAG, 0, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { DS_ID, DS_DATA, DS_SIZE, DS_STORE, DS_RETRIEVE };
    OptVal v[MAX_OPTS];
    op_data_storage_args_t args;
    unsigned char *outBytes;
    Tcl_Obj *out, *dict;
    hsm_err_t err;
    int store, warned, size;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK
	    || Direction(interp, specs, v, DS_STORE, DS_RETRIEVE, &store)
		!= TCL_OK) {
	return TCL_ERROR;
    }
    memset(&args, 0, sizeof(args));
    args.data_id = (uint16_t) v[DS_ID].num;
    if (store) {
	if (!v[DS_DATA].given) {
	    return OptionError(interp, "MISSING", "-data", Tcl_NewStringObj(
		    "option \"-data\" is required with -store", -1));
	}
	if (v[DS_SIZE].given) {
	    return OptionError(interp, "VALUE", "-data_size", Tcl_NewStringObj(
		    "option \"-data_size\" is for -retrieve: -store stores "
		    "all of -data", -1));
	}
	args.data = (uint8_t *) v[DS_DATA].bytes;
	args.data_size = (uint32_t) v[DS_DATA].len;
	args.flags = HSM_OP_DATA_STORAGE_FLAGS_STORE;
	if (HsmCheck(interp, "data_storage", hsm_data_storage(h->hdl, &args),
		&warned) != TCL_OK) {
	    return TCL_ERROR;
	}
	dict = Tcl_NewDictObj();
	WarnResult(dict, warned);
	Tcl_SetObjResult(interp, dict);
	return TCL_OK;
    }
    if (v[DS_DATA].given) {
	return OptionError(interp, "VALUE", "-data", Tcl_NewStringObj(
		"option \"-data\" is for -store: -retrieve returns the data",
		-1));
    }
    args.flags = HSM_OP_DATA_STORAGE_FLAGS_RETRIEVE;
    if (v[DS_SIZE].given) {
	size = (int) v[DS_SIZE].num;
    } else {
	err = hsm_data_storage(h->hdl, &args);
	if (err == HSM_NO_ERROR || args.data_size == 0
		|| args.data_size > (uint32_t) BYTES_MAX) {
	    /* Not the "no room" answer: report what the engine said. */
	    return HsmCheck(interp, "data_storage",
		    err == HSM_NO_ERROR ? HSM_GENERAL_ERROR : err, NULL);
	}
	size = (int) args.data_size;
    }
    out = NewBytes(size, &outBytes);
    Tcl_IncrRefCount(out);
    args.data = outBytes;
    args.data_size = (uint32_t) size;
    if (HsmCheck(interp, "data_storage", hsm_data_storage(h->hdl, &args),
	    NULL) != TCL_OK) {
	Tcl_DecrRefCount(out);
	return TCL_ERROR;
    }
    if (args.data_size < (uint32_t) size) {
	/* The engine says how much it wrote: the rest is not data. */
	Tcl_SetByteArrayLength(out, (int) args.data_size);
    }
    return BytesResult(interp, out, TCL_OK);
}

/* ------------------------------------------------------------------ */
/* spps::hsm                                                            */
/* ------------------------------------------------------------------ */

/*
 * spps::hsm open_session ?-dir stateDir? ?-session_priority n?
 *	?-operating_mode n?
 * Opens a session on the HSM whose state is in stateDir (created on first
 * use), or on the default HSM ($SPPS_HSM_DIR, else $SPPS_HOME/hsm/default).
 * Returns the command of the session.
 */
static int
OpenSessionCmd(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-dir", OT_OBJ, 0, NULL, 0},
	{"-session_priority", OT_UINT, U8_MAX_, NULL, 0},
	{"-operating_mode", OT_UINT, U8_MAX_, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { OS_DIR, OS_PRIORITY, OS_MODE };
    OptVal v[MAX_OPTS];
    open_session_args_t args;
    hsm_hdl_t session = 0;
    hsm_err_t err;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    memset(&args, 0, sizeof(args));
    args.session_priority = (uint8_t) v[OS_PRIORITY].num;
    args.operating_mode = (uint8_t) v[OS_MODE].num;
    if (v[OS_DIR].given) {
	Tcl_Obj *norm = Tcl_FSGetNormalizedPath(interp, v[OS_DIR].obj);
	const char *native;

	if (norm == NULL) {
	    return TCL_ERROR;
	}
	native = Tcl_GetString(v[OS_DIR].obj)[0] == '\0' ? NULL
		: (const char *) Tcl_FSGetNativePath(v[OS_DIR].obj);
	if (native == NULL) {
	    return OptionError(interp, "VALUE", "-dir", Tcl_ObjPrintf(
		    "bad dir \"%s\": not a directory of the native file system",
		    Tcl_GetString(v[OS_DIR].obj)));
	}
	err = hsm_spps_open_session_at(native, &args, &session);
    } else {
	err = hsm_open_session(&args, &session);
    }
    if (HsmCheck(interp, "open_session", err, NULL) != TCL_OK) {
	return TCL_ERROR;
    }
    return NewHandle(interp, KIND_SESSION, session, NULL);
}

/*
 * spps::hsm wrap_key -kek bytes -key bytes ?-iv bytes?
 *
 *	A host-side helper, not an HSM call: wraps a key the way
 *	manage_key imports it, IV (12 bytes, random unless given) ||
 *	AES-GCM(kek, key) || tag (16 bytes), no AAD.  It is what the owner
 *	of a key does outside the HSM, with a KEK it holds (the root KEK
 *	from export_root_key_encryption_key): it runs in this process, so
 *	use it only where the key may be in clear here.  The buffers it
 *	uses are cleansed.
 */
static int
WrapKeyCmd(Tcl_Interp *interp, int objc, Tcl_Obj *const objv[])
{
    static const OptSpec specs[] = {
	{"-kek", OT_BYTES, 32, NULL, 1},
	{"-key", OT_BYTES, U16_MAX_ - 28, NULL, 1},
	{"-iv", OT_BYTES, 12, NULL, 0},
	{NULL, 0, 0, NULL, 0}
    };
    enum { WK_KEK, WK_KEY, WK_IV };
    OptVal v[MAX_OPTS];
    const char *cipherName;
    EVP_CIPHER *cipher = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    unsigned char iv[12], *outBytes;
    Tcl_Obj *out;
    int n = 0, m = 0, ok;

    if (ParseOptions(interp, specs, 2, objc, objv, v) != TCL_OK) {
	return TCL_ERROR;
    }
    switch (v[WK_KEK].len) {
    case 16: cipherName = "AES-128-GCM"; break;
    case 24: cipherName = "AES-192-GCM"; break;
    case 32: cipherName = "AES-256-GCM"; break;
    default:
	return OptionError(interp, "VALUE", "-kek", Tcl_ObjPrintf(
		"bad kek: %d bytes is not an AES key (16, 24 or 32 bytes)",
		v[WK_KEK].len));
    }
    if (v[WK_IV].given) {
	if (v[WK_IV].len != 12) {
	    return OptionError(interp, "VALUE", "-iv", Tcl_ObjPrintf(
		    "bad iv: %d bytes, must be 12", v[WK_IV].len));
	}
	memcpy(iv, v[WK_IV].bytes, 12);
    } else if (RAND_bytes(iv, 12) != 1) {
	return Spps_Error(interp, "HSM WRAP", "wrap_key: OpenSSL cannot "
		"produce a random IV");
    }
    out = NewBytes(12 + v[WK_KEY].len + 16, &outBytes);
    Tcl_IncrRefCount(out);
    memcpy(outBytes, iv, 12);
    cipher = EVP_CIPHER_fetch(NULL, cipherName, NULL);
    ctx = EVP_CIPHER_CTX_new();
    ok = cipher != NULL && ctx != NULL
	    && EVP_EncryptInit_ex2(ctx, cipher, v[WK_KEK].bytes, iv, NULL) == 1
	    && EVP_EncryptUpdate(ctx, outBytes + 12, &n, v[WK_KEY].bytes,
		    v[WK_KEY].len) == 1
	    && EVP_EncryptFinal_ex(ctx, outBytes + 12 + n, &m) == 1
	    && n + m == v[WK_KEY].len
	    && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16,
		    outBytes + 12 + v[WK_KEY].len) == 1;
    EVP_CIPHER_CTX_free(ctx);		/* cleanses the key schedule */
    EVP_CIPHER_free(cipher);
    OPENSSL_cleanse(iv, sizeof(iv));
    if (!ok) {
	Tcl_DecrRefCount(out);
	return Spps_Error(interp, "HSM WRAP", "wrap_key: OpenSSL cannot "
		"encrypt with %s", cipherName);
    }
    return BytesResult(interp, out, TCL_OK);
}

/*
 * HsmObjCmd --
 *	spps::hsm subcommand ?arg ...?
 */
static int
HsmObjCmd(ClientData clientData, Tcl_Interp *interp, int objc,
	Tcl_Obj *const objv[])
{
    static const char *const subs[] = {"open_session", "wrap_key", NULL};
    enum { SUB_OPEN_SESSION, SUB_WRAP_KEY };
    int sub;

    (void) clientData;
    if (objc < 2) {
	Tcl_WrongNumArgs(interp, 1, objv, "subcommand ?-option value ...?");
	return TCL_ERROR;
    }
    if (Tcl_GetIndexFromObj(interp, objv[1], subs, "subcommand", 0, &sub)
	    != TCL_OK) {
	return UnknownWord(interp, objv[1]);
    }
    switch (sub) {
    case SUB_OPEN_SESSION:
	return OpenSessionCmd(interp, objc, objv);
    case SUB_WRAP_KEY:
	return WrapKeyCmd(interp, objc, objv);
    }
    return TCL_ERROR;
}

/* ------------------------------------------------------------------ */
/* Method tables                                                        */
/* ------------------------------------------------------------------ */

static const Method sessionMethods[] = {
    {"close", CloseMethod},
    {"ecies_encryption", EciesEncryptionMethod},
    {"export_root_key_encryption_key", ExportRootKekMethod},
    {"get_info", GetInfoMethod},
    {"open_hash_service", OpenHashMethod},
    {"open_key_store_service", OpenKeyStoreMethod},
    {"open_rng_service", OpenRngMethod},
    {"open_signature_verification_service", OpenSignVerMethod},
    {"pub_key_decompression", PubKeyDecompressionMethod},
    {"pub_key_reconstruction", PubKeyReconstructionMethod},
    {"spps_close_lifecycle", CloseLifecycleMethod},
    {NULL, NULL}
};

static const Method keyStoreMethods[] = {
    {"close", CloseMethod},
    {"open_cipher_service", OpenCipherMethod},
    {"open_data_storage_service", OpenDataStorageMethod},
    {"open_key_management_service", OpenKeyManagementMethod},
    {"open_mac_service", OpenMacMethod},
    {"open_signature_generation_service", OpenSignGenMethod},
    {"pub_key_recovery", PubKeyRecoveryMethod},
    {NULL, NULL}
};

static const Method keyManagementMethods[] = {
    {"butterfly_key_expansion", ButterflyMethod},
    {"close", CloseMethod},
    {"generate_key", GenerateKeyMethod},
    {"manage_key", ManageKeyMethod},
    {"manage_key_group", ManageKeyGroupMethod},
    {NULL, NULL}
};

static const Method cipherMethods[] = {
    {"auth_enc", AuthEncMethod},
    {"cipher_one_go", CipherOneGoMethod},
    {"close", CloseMethod},
    {"ecies_decryption", EciesDecryptionMethod},
    {NULL, NULL}
};

static const Method signGenMethods[] = {
    {"close", CloseMethod},
    {"generate_signature", GenerateSignatureMethod},
    {"prepare_signature", PrepareSignatureMethod},
    {NULL, NULL}
};

static const Method signVerMethods[] = {
    {"close", CloseMethod},
    {"import_public_key", ImportPublicKeyMethod},
    {"verify_signature", VerifySignatureMethod},
    {NULL, NULL}
};

static const Method rngMethods[] = {
    {"close", CloseMethod},
    {"get_random", GetRandomMethod},
    {NULL, NULL}
};

static const Method hashMethods[] = {
    {"close", CloseMethod},
    {"hash_one_go", HashOneGoMethod},
    {NULL, NULL}
};

static const Method macMethods[] = {
    {"close", CloseMethod},
    {"mac_one_go", MacOneGoMethod},
    {NULL, NULL}
};

static const Method dataStorageMethods[] = {
    {"close", CloseMethod},
    {"data_storage", DataStorageMethod},
    {NULL, NULL}
};

static const KindInfo kinds[KIND_COUNT] = {
    {"session", hsm_close_session, sessionMethods},
    {"key_store", hsm_close_key_store_service, keyStoreMethods},
    {"key_management", hsm_close_key_management_service, keyManagementMethods},
    {"cipher", hsm_close_cipher_service, cipherMethods},
    {"signature_generation", hsm_close_signature_generation_service,
	    signGenMethods},
    {"signature_verification", hsm_close_signature_verification_service,
	    signVerMethods},
    {"rng", hsm_close_rng_service, rngMethods},
    {"hash", hsm_close_hash_service, hashMethods},
    {"mac", hsm_close_mac_service, macMethods},
    {"data_storage", hsm_close_data_storage_service, dataStorageMethods}
};

/*
 * SppsHsm_Init --
 *	Creates spps::hsm and the namespace of its handle commands.
 */
int
SppsHsm_Init(Tcl_Interp *interp)
{
    if (Tcl_FindNamespace(interp, "::spps::hsm", NULL, 0) == NULL
	    && Tcl_CreateNamespace(interp, "::spps::hsm", NULL, NULL) == NULL) {
	return TCL_ERROR;
    }
    GetHsmInterp(interp);
    Tcl_CreateObjCommand(interp, "::spps::hsm", HsmObjCmd, NULL, NULL);
    return TCL_OK;
}
