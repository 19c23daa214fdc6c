/*
 * role_common.c --
 *
 *	What the U-HSM and M-HSM roles (and the simulated factory and bench,
 *	which run HSMs of their own) share: opening the HSM of a server name
 *	or a directory, P-384 and AES keys in firmware key stores, adapters
 *	that let the protocol core sign and do ECDH with keys that never leave
 *	the engine, wrapping secrets for storage outside the HSM, MAC keys
 *	bound to the HSM, and firmware blobs.  Everything goes through the
 *	engine's public API and hsm_fw.h.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "plat.h"
#include "roles/role_common.h"

#define GCM_IV  12
#define GCM_TAG 16
#define SERVER_NAME_MAX 64

/*
 *----------------------------------------------------------------------
 *
 * role_hsm_error --
 *	"what: <engine text>: <engine detail>" (the detail is the thread's
 *	last error, so call this right after the failing call).
 *
 *----------------------------------------------------------------------
 */

int
role_hsm_error(ProtoError *err, const char *what, hsm_err_t code)
{
    const char *detail = hsm_spps_last_error();

    if (err == NULL) {
	return -1;
    }
    if (detail != NULL && *detail != '\0') {
	snprintf(err->msg, sizeof(err->msg), "%s: %s: %s", what,
		hsm_spps_err_text(code), detail);
    } else {
	snprintf(err->msg, sizeof(err->msg), "%s: %s", what,
		hsm_spps_err_text(code));
    }
    return -1;
}

/* Fail -- a message with one string argument into err; returns -1. */
static int
Fail(ProtoError *err, const char *fmt, const char *arg)
{
    if (err != NULL) {
	snprintf(err->msg, sizeof(err->msg), fmt, arg);
    }
    return -1;
}

/*
 *----------------------------------------------------------------------
 *
 * role_server_name_valid --
 *	1 if name may name an HSM: 1..64 letters, digits, '.', '-', '_',
 *	starting with a letter or digit (so never ".", ".." or a hidden
 *	name, and never a path).
 *
 *----------------------------------------------------------------------
 */

int
role_server_name_valid(const char *name)
{
    size_t i, n;

    if (name == NULL || (n = strlen(name)) == 0 || n > SERVER_NAME_MAX) {
	return 0;
    }
    for (i = 0; i < n; i++) {
	char c = name[i];

	if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		|| (c >= '0' && c <= '9')
		|| (i > 0 && (c == '.' || c == '-' || c == '_')))) {
	    return 0;
	}
    }
    return 1;
}

/*
 *----------------------------------------------------------------------
 *
 * role_hsm_open_dir, role_hsm_open, role_hsm_close --
 *	A session on the HSM of a state directory (created on first use).
 *
 *----------------------------------------------------------------------
 */

static int
OpenDir(const char *dir, const char *serverName, RoleHsm **hsmPtr,
	ProtoError *err)
{
    open_session_args_t args;
    RoleHsm *hsm;
    PlatError perr;
    hsm_err_t code;

    *hsmPtr = NULL;
    if (dir == NULL || *dir == '\0') {
	return Fail(err, "%s", "no HSM state directory given");
    }
    if (plat_mkdirs(dir, 0700, &perr) != 0) {
	return Fail(err, "%s", perr.msg);
    }
    if ((hsm = calloc(1, sizeof(*hsm))) == NULL
	    || (hsm->dir = strdup(dir)) == NULL
	    || (serverName != NULL
		&& (hsm->serverName = strdup(serverName)) == NULL)) {
	if (hsm != NULL) {
	    free(hsm->dir);
	    free(hsm);
	}
	return Fail(err, "no memory to open the HSM at %s", dir);
    }
    memset(&args, 0, sizeof(args));
    code = hsm_spps_open_session_at(dir, &args, &hsm->session);
    if (code != HSM_NO_ERROR) {
	char what[600];

	snprintf(what, sizeof(what), "cannot open the HSM at %.500s", dir);
	role_hsm_error(err, what, code);
	free(hsm->serverName);
	free(hsm->dir);
	free(hsm);
	return -1;
    }
    *hsmPtr = hsm;
    return 0;
}

/* role_hsm_open_dir -- a session on the HSM of dir (created on first use). */
int
role_hsm_open_dir(const char *dir, RoleHsm **hsm, ProtoError *err)
{
    return OpenDir(dir, NULL, hsm, err);
}

/* role_hsm_open -- the HSM of a server name, $SPPS_HOME/hsm/<name>. */
int
role_hsm_open(const char *serverName, RoleHsm **hsm, ProtoError *err)
{
    char quoted[80];
    char *home, *hsmDir, *dir;
    int rc;

    *hsm = NULL;
    if (!role_server_name_valid(serverName)) {
	size_t i, n = 0;

	/* Quote what was given, printable characters only. */
	for (i = 0; serverName != NULL && serverName[i] != '\0'
		&& n < sizeof(quoted) - 4; i++) {
	    unsigned char c = (unsigned char) serverName[i];

	    quoted[n++] = (c >= 0x20 && c < 0x7F) ? (char) c : '?';
	}
	quoted[n] = '\0';
	if (err != NULL) {
	    snprintf(err->msg, sizeof(err->msg), "invalid HSM server name "
		    "'%s': use 1 to %d letters, digits, '.', '-' or '_', "
		    "starting with a letter or digit", quoted,
		    SERVER_NAME_MAX);
	}
	return -1;
    }
    if ((home = plat_spps_home()) == NULL) {
	return Fail(err, "%s", "cannot find the spps state directory: set "
		"SPPS_HOME");
    }
    hsmDir = plat_join(home, "hsm");
    dir = hsmDir != NULL ? plat_join(hsmDir, serverName) : NULL;
    free(home);
    free(hsmDir);
    if (dir == NULL) {
	return Fail(err, "%s", "no memory");
    }
    rc = OpenDir(dir, serverName, hsm, err);
    free(dir);
    return rc;
}

/* role_hsm_close -- closes the session and frees the RoleHsm. */
void
role_hsm_close(RoleHsm *hsm)
{
    if (hsm == NULL) {
	return;
    }
    if (hsm->session != 0) {
	hsm_close_session(hsm->session);
    }
    free(hsm->dir);
    free(hsm->serverName);
    free(hsm);
}

/*
 *----------------------------------------------------------------------
 *
 * role_key_store_open --
 *	A firmware key store of the HSM (created on first use).
 *
 *----------------------------------------------------------------------
 */

int
role_key_store_open(RoleHsm *hsm, uint16_t fwStore, hsm_hdl_t *keyStore,
	ProtoError *err)
{
    hsm_err_t code = hsm_fw_open_key_store(hsm->session, fwStore, keyStore);

    if (code != HSM_NO_ERROR) {
	char what[80];

	snprintf(what, sizeof(what), "cannot open firmware key store %u",
		(unsigned) fwStore);
	return role_hsm_error(err, what, code);
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * role_key_generate --
 *	A new persistent key in group 0 of the key store, written strictly
 *	(durable when this returns).  EC keys give their public key x || y
 *	(pubLen = 2 x coordinate size); AES keys need pub NULL, pubLen 0.
 *
 *----------------------------------------------------------------------
 */

int
role_key_generate(RoleHsm *hsm, hsm_hdl_t keyStore, hsm_key_type_t type,
	uint32_t *keyId, uint8_t *pub, size_t pubLen, ProtoError *err)
{
    open_svc_key_management_args_t margs;
    op_generate_key_args_t gargs;
    hsm_hdl_t km = 0;
    hsm_err_t code;

    (void) hsm;
    if (pubLen > UINT16_MAX) {
	return Fail(err, "%s", "key generation: bad public key size");
    }
    memset(&margs, 0, sizeof(margs));
    code = hsm_open_key_management_service(keyStore, &margs, &km);
    if (code != HSM_NO_ERROR) {
	return role_hsm_error(err, "key generation", code);
    }
    memset(&gargs, 0, sizeof(gargs));
    *keyId = 0;
    gargs.key_identifier = keyId;
    gargs.out_size = (uint16_t) pubLen;
    gargs.flags = HSM_OP_KEY_GENERATION_FLAGS_CREATE
	    | HSM_OP_KEY_GENERATION_FLAGS_STRICT_OPERATION;
    gargs.key_type = type;
    gargs.key_group = 0;
    gargs.key_info = HSM_KEY_INFO_PERSISTENT;
    gargs.out_key = pub;
    code = hsm_generate_key(km, &gargs);
    if (code != HSM_NO_ERROR && code != HSM_KEY_STORE_COUNTER) {
	role_hsm_error(err, "key generation", code);
	hsm_close_key_management_service(km);
	return -1;
    }
    hsm_close_key_management_service(km);
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * role_key_public --
 *	The public key x || y of a P-384 key pair.
 *
 *----------------------------------------------------------------------
 */

int
role_key_public(const RoleKey *key, uint8_t pub[PROTO_P384_PUB],
	ProtoError *err)
{
    op_pub_key_recovery_args_t args;
    hsm_err_t code;

    memset(&args, 0, sizeof(args));
    args.key_identifier = key->keyId;
    args.out_key = pub;
    args.out_key_size = PROTO_P384_PUB;
    args.key_type = HSM_KEY_TYPE_ECDSA_NIST_P384;
    code = hsm_pub_key_recovery(key->keyStore, &args);
    if (code != HSM_NO_ERROR) {
	return role_hsm_error(err, "public key recovery", code);
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * role_sign --
 *	ProtoSignFn: ECDSA P-384 / SHA-384 by the engine's signature
 *	service (INPUT_MESSAGE), r || s taken from its r || s || Ry.
 *
 *----------------------------------------------------------------------
 */

int
role_sign(void *ctx, const uint8_t *data, size_t len,
	uint8_t sig[PROTO_P384_SIG], ProtoError *err)
{
    const RoleKey *key = ctx;
    open_svc_sign_gen_args_t sargs;
    op_generate_sign_args_t args;
    uint8_t out[PROTO_P384_SIG + 1];
    static uint8_t empty[1];
    hsm_hdl_t sg = 0;
    hsm_err_t code;

    if (len > UINT32_MAX) {
	return Fail(err, "%s", "signature: the data is too long");
    }
    memset(&sargs, 0, sizeof(sargs));
    code = hsm_open_signature_generation_service(key->keyStore, &sargs, &sg);
    if (code != HSM_NO_ERROR) {
	return role_hsm_error(err, "signature", code);
    }
    memset(&args, 0, sizeof(args));
    args.key_identifier = key->keyId;
    args.message = data != NULL ? (uint8_t *) data : empty;
    args.message_size = (uint32_t) len;
    args.signature = out;
    args.signature_size = sizeof(out);
    args.scheme_id = HSM_SIGNATURE_SCHEME_ECDSA_NIST_P384_SHA_384;
    args.flags = HSM_OP_GENERATE_SIGN_FLAGS_INPUT_MESSAGE;
    code = hsm_generate_signature(sg, &args);
    if (code != HSM_NO_ERROR) {
	role_hsm_error(err, "signature", code);
	hsm_close_signature_generation_service(sg);
	return -1;
    }
    hsm_close_signature_generation_service(sg);
    memcpy(sig, out, PROTO_P384_SIG);
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * role_ecdh --
 *	ProtoEcdhFn: ECDH of a P-384 key pair of the key store with peer,
 *	computed with the key borrowed through hsm_fw_key_use (it never
 *	leaves the engine's memory); the peer is validated as a point.
 *
 *----------------------------------------------------------------------
 */

typedef struct EcdhCall {
    const uint8_t *peer;
    uint8_t *shared;
    ProtoError err;
    int failed;
} EcdhCall;

/* EcdhWithKey -- hsm_fw_key_use callback: ECDH with the borrowed key. */
static hsm_err_t
EcdhWithKey(const HsmFwKey *key, void *ctx)
{
    EcdhCall *call = ctx;

    if (key->type != HSM_KEY_TYPE_ECDSA_NIST_P384 || key->pkey == NULL) {
	snprintf(call->err.msg, sizeof(call->err.msg), "ECDH: the key is not "
		"a P-384 key pair");
	call->failed = 1;
	return HSM_INVALID_PARAM;
    }
    if (proto_p384_ecdh(key->pkey, call->peer, call->shared, &call->err)
	    != 0) {
	call->failed = 1;
	return HSM_INVALID_PARAM;
    }
    return HSM_NO_ERROR;
}

/* role_ecdh -- ProtoEcdhFn over a RoleKey. */
int
role_ecdh(void *ctx, const uint8_t peer[PROTO_P384_PUB], uint8_t shared[48],
	ProtoError *err)
{
    const RoleKey *key = ctx;
    EcdhCall call;
    hsm_err_t code;

    memset(&call, 0, sizeof(call));
    call.peer = peer;
    call.shared = shared;
    code = hsm_fw_key_use(key->keyStore, key->keyId, EcdhWithKey, &call);
    if (code != HSM_NO_ERROR) {
	OPENSSL_cleanse(shared, 48);
	if (call.failed) {
	    if (err != NULL) {
		*err = call.err;
	    }
	    return -1;
	}
	return role_hsm_error(err, "ECDH", code);
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * role_wrap, role_unwrap --
 *	AES-256-GCM by the engine's cipher service under an AES key of the
 *	key store, with a fresh IV from the HSM's random generator:
 *	IV (12) || ciphertext || tag (16).  The AAD is at most 65535 bytes
 *	(the API's aad_size).
 *
 *----------------------------------------------------------------------
 */

static int
HsmRandom(RoleHsm *hsm, uint8_t *out, uint32_t len, ProtoError *err)
{
    open_svc_rng_args_t rargs;
    op_get_random_args_t args;
    hsm_hdl_t rng = 0;
    hsm_err_t code;

    memset(&rargs, 0, sizeof(rargs));
    if ((code = hsm_open_rng_service(hsm->session, &rargs, &rng))
	    != HSM_NO_ERROR) {
	return role_hsm_error(err, "random", code);
    }
    args.output = out;
    args.random_size = len;
    code = hsm_get_random(rng, &args);
    if (code != HSM_NO_ERROR) {
	role_hsm_error(err, "random", code);
	hsm_close_rng_service(rng);
	return -1;
    }
    hsm_close_rng_service(rng);
    return 0;
}

/* role_random -- len bytes from the HSM's random generator. */
int
role_random(RoleHsm *hsm, uint8_t *out, size_t len, ProtoError *err)
{
    if (len == 0) {
	return 0;
    }
    if (len > UINT32_MAX) {
	return Fail(err, "%s", "random: too many bytes asked for");
    }
    return HsmRandom(hsm, out, (uint32_t) len, err);
}

/* AuthEnc -- one AES-256-GCM call of the engine's cipher service. */
static int
AuthEnc(const RoleKey *aesKey, int encrypt, const uint8_t *iv,
	const uint8_t *aad, size_t aadLen, const uint8_t *in, size_t inLen,
	uint8_t *out, size_t outLen, ProtoError *err)
{
    open_svc_cipher_args_t cargs;
    op_auth_enc_args_t args;
    static uint8_t empty[1];
    hsm_hdl_t cipher = 0;
    hsm_err_t code;
    const char *what = encrypt ? "wrap" : "unwrap";

    memset(&cargs, 0, sizeof(cargs));
    if ((code = hsm_open_cipher_service(aesKey->keyStore, &cargs, &cipher))
	    != HSM_NO_ERROR) {
	return role_hsm_error(err, what, code);
    }
    memset(&args, 0, sizeof(args));
    args.key_identifier = aesKey->keyId;
    args.iv = (uint8_t *) iv;
    args.iv_size = GCM_IV;
    args.aad = aadLen > 0 ? (uint8_t *) aad : NULL;
    args.aad_size = (uint16_t) aadLen;
    args.ae_algo = HSM_AUTH_ENC_ALGO_AES_GCM;
    args.flags = encrypt ? HSM_AUTH_ENC_FLAGS_ENCRYPT
	    : HSM_AUTH_ENC_FLAGS_DECRYPT;
    args.input = inLen > 0 ? (uint8_t *) in : empty;
    args.input_size = (uint32_t) inLen;
    args.output = outLen > 0 ? out : empty;
    args.output_size = (uint32_t) outLen;
    code = hsm_auth_enc(cipher, &args);
    if (code != HSM_NO_ERROR) {
	role_hsm_error(err, what, code);
	hsm_close_cipher_service(cipher);
	return -1;
    }
    hsm_close_cipher_service(cipher);
    return 0;
}

/* role_wrap -- IV || GCM(aesKey, aad, pt) || tag, IV from the HSM. */
int
role_wrap(const RoleKey *aesKey, const uint8_t *aad, size_t aadLen,
	const uint8_t *pt, size_t ptLen, uint8_t **out, size_t *outLen,
	ProtoError *err)
{
    uint8_t *buf;
    size_t len;

    *out = NULL;
    *outLen = 0;
    if (aadLen > UINT16_MAX || ptLen > UINT32_MAX - GCM_IV - GCM_TAG
	    || (ptLen > 0 && pt == NULL) || (aadLen > 0 && aad == NULL)) {
	return Fail(err, "%s", "wrap: the data or associated data is too "
		"long");
    }
    len = GCM_IV + ptLen + GCM_TAG;
    if ((buf = malloc(len)) == NULL) {
	return Fail(err, "%s", "wrap: no memory");
    }
    if (HsmRandom(aesKey->hsm, buf, GCM_IV, err) != 0
	    || AuthEnc(aesKey, 1, buf, aad, aadLen, pt, ptLen, buf + GCM_IV,
		ptLen + GCM_TAG, err) != 0) {
	proto_clear_free(buf, len);
	return -1;
    }
    *out = buf;
    *outLen = len;
    return 0;
}

/* role_unwrap -- the plaintext of role_wrap's output, or nothing. */
int
role_unwrap(const RoleKey *aesKey, const uint8_t *aad, size_t aadLen,
	const uint8_t *in, size_t inLen, uint8_t **pt, size_t *ptLen,
	ProtoError *err)
{
    uint8_t *buf;
    size_t len;

    *pt = NULL;
    *ptLen = 0;
    if (aadLen > UINT16_MAX || (aadLen > 0 && aad == NULL)) {
	return Fail(err, "%s", "unwrap: the associated data is too long");
    }
    if (in == NULL || inLen < GCM_IV + GCM_TAG || inLen > UINT32_MAX) {
	return Fail(err, "%s", "unwrap: the wrapped data is truncated or too "
		"long");
    }
    len = inLen - GCM_IV - GCM_TAG;
    if ((buf = malloc(len ? len : 1)) == NULL) {
	return Fail(err, "%s", "unwrap: no memory");
    }
    if (AuthEnc(aesKey, 0, in, aad, aadLen, in + GCM_IV, inLen - GCM_IV, buf,
	    len, err) != 0) {
	proto_clear_free(buf, len ? len : 1);
	return -1;
    }
    *pt = buf;
    *ptLen = len;
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * role_mac_key --
 *	hsm_fw_derive(session, "mac " + label): a 32-byte key only this HSM
 *	can compute.
 *
 *----------------------------------------------------------------------
 */

int
role_mac_key(RoleHsm *hsm, const char *label, uint8_t key[32], ProtoError *err)
{
    char full[200];
    hsm_err_t code;

    if (label == NULL || strlen(label) > sizeof(full) - 8) {
	return Fail(err, "%s", "MAC key: the label is missing or too long");
    }
    snprintf(full, sizeof(full), "mac %s", label);
    code = hsm_fw_derive(hsm->session, full, key, 32);
    if (code != HSM_NO_ERROR) {
	return role_hsm_error(err, "MAC key", code);
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * role_blob_read, role_blob_write --
 *	Firmware blobs; a blob that does not exist is *found = 0, not an
 *	error.
 *
 *----------------------------------------------------------------------
 */

int
role_blob_read(RoleHsm *hsm, const char *name, uint8_t **data, size_t *len,
	int *found, ProtoError *err)
{
    hsm_err_t code;
    char what[120];

    *data = NULL;
    *len = 0;
    *found = 0;
    code = hsm_fw_blob_read(hsm->session, name, data, len);
    if (code == HSM_UNKNOWN_ID) {
	return 0;
    }
    if (code != HSM_NO_ERROR) {
	snprintf(what, sizeof(what), "cannot read HSM record '%.64s'",
		name != NULL ? name : "");
	return role_hsm_error(err, what, code);
    }
    *found = 1;
    return 0;
}

/* role_blob_write -- writes a firmware blob (durable when it returns). */
int
role_blob_write(RoleHsm *hsm, const char *name, const uint8_t *data,
	size_t len, ProtoError *err)
{
    hsm_err_t code;
    char what[120];

    code = hsm_fw_blob_write(hsm->session, name, data, len);
    if (code != HSM_NO_ERROR) {
	snprintf(what, sizeof(what), "cannot write HSM record '%.64s'",
		name != NULL ? name : "");
	return role_hsm_error(err, what, code);
    }
    return 0;
}
