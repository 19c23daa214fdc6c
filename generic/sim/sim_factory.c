/*
 * sim_factory.c --
 *
 *	The simulated silicon vendor (sim_factory.h, docs/FORMATS.md
 *	"Factory"): an engine HSM at $SPPS_FACTORY (default
 *	$SPPS_HOME/factory) whose firmware key store ROLE_FW_STORE_FACTORY
 *	holds the vendor root P-384 key pair and the DFK-DB key (an AES-256
 *	key of the engine, so it is on disk only inside the engine's
 *	encrypted key groups).  Two firmware blobs: "factory.keys" (which key
 *	ids they are, and the root public key) and "factory.serial" (the last
 *	certificate serial, advanced in a transaction, so serials are unique
 *	across processes).  Also the die table: which dies exist, their
 *	family, and which have a factory key pair (KFP).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "plat.h"
#include "proto/proto.h"
#include "roles/role_common.h"
#include "sim/sim_factory.h"

#define KEYS_BLOB    "factory.keys"
#define SERIAL_BLOB  "factory.serial"
#define KEYS_VERSION 1

/* Tags of the factory.keys record. */
enum { FK_VERSION = 1, FK_ROOT_ID = 2, FK_DFK_ID = 3, FK_ROOT_PUB = 4 };

/* Tags of the device secrets record (proto_device.h, ProtoDeviceSecrets). */
enum { DS_DSN = 1, DS_FK = 2, DS_KFP = 3 };

struct SimFactory {
    RoleHsm *hsm;
    RoleKey rootKey;		/* P-384 vendor root */
    RoleKey dfkKey;		/* AES-256 DFK-DB key */
    uint8_t root[PROTO_P384_PUB];
};

/* ------------------------------------------------------------------ */
/* Dies                                                                 */
/* ------------------------------------------------------------------ */

typedef struct DieInfo {
    const char *name;
    const char *family;
    int hasKfp;
} DieInfo;

static const DieInfo dies[] = {
    {"M2S005", "SmartFusion2", 0}, {"M2S010", "SmartFusion2", 0},
    {"M2S025", "SmartFusion2", 0}, {"M2S050", "SmartFusion2", 0},
    {"M2S060", "SmartFusion2", 1}, {"M2S090", "SmartFusion2", 1},
    {"M2S150", "SmartFusion2", 1},
    {"M2GL005", "IGLOO2", 0}, {"M2GL010", "IGLOO2", 0},
    {"M2GL025", "IGLOO2", 0}, {"M2GL050", "IGLOO2", 0},
    {"M2GL060", "IGLOO2", 1}, {"M2GL090", "IGLOO2", 1},
    {"M2GL150", "IGLOO2", 1},
    {"MPF050", "PolarFire", 1}, {"MPF100", "PolarFire", 1},
    {"MPF200", "PolarFire", 1}, {"MPF300", "PolarFire", 1},
    {"MPF500", "PolarFire", 1},
    {"MPFS025", "PolarFire SoC", 1}, {"MPFS095", "PolarFire SoC", 1},
    {"MPFS160", "PolarFire SoC", 1}, {"MPFS250", "PolarFire SoC", 1},
    {"MPFS460", "PolarFire SoC", 1},
    {NULL, NULL, 0}
};

/* The suffixes of part names users write after the die: transceivers (T),
 * security (S), low power (L), extended (X). */
static const char *const dieSuffixes[] = {
    "", "T", "TS", "S", "TL", "TLS", "XT", "L", "LS", NULL
};

/* EqualNoCase -- 1 if the first n characters match ignoring ASCII case. */
static int
EqualNoCase(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
	char x = a[i], y = b[i];

	if (x >= 'a' && x <= 'z') {
	    x = (char) (x - 'a' + 'A');
	}
	if (y >= 'a' && y <= 'z') {
	    y = (char) (y - 'a' + 'A');
	}
	if (x != y || x == '\0') {
	    return 0;
	}
    }
    return 1;
}

/* FindDie -- the table entry of a die name, with its suffix forms. */
static const DieInfo *
FindDie(const char *die)
{
    size_t i, j, n;

    if (die == NULL) {
	return NULL;
    }
    for (i = 0; dies[i].name != NULL; i++) {
	n = strlen(dies[i].name);
	if (strlen(die) < n || !EqualNoCase(die, dies[i].name, n)) {
	    continue;
	}
	for (j = 0; dieSuffixes[j] != NULL; j++) {
	    size_t m = strlen(dieSuffixes[j]);

	    if (strlen(die + n) == m && (m == 0
		    || EqualNoCase(die + n, dieSuffixes[j], m))) {
		return &dies[i];
	    }
	}
    }
    return NULL;
}

/* sim_die_has_kfp -- 1 if the die has a factory key pair. */
int
sim_die_has_kfp(const char *die)
{
    const DieInfo *d = FindDie(die);

    return d != NULL && d->hasKfp;
}

/* sim_die_family -- the family of a die, NULL if unknown. */
const char *
sim_die_family(const char *die)
{
    const DieInfo *d = FindDie(die);

    return d != NULL ? d->family : NULL;
}

/* sim_die_canon -- the canonical die name ("M2S090"). */
int
sim_die_canon(const char *die, char out[32])
{
    const DieInfo *d = FindDie(die);

    out[0] = '\0';
    if (d == NULL) {
	return -1;
    }
    snprintf(out, 32, "%s", d->name);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Opening                                                              */
/* ------------------------------------------------------------------ */

typedef struct InitCtx {
    SimFactory *f;
    ProtoError err;
} InitCtx;

/* InitFail -- records msg (if any) and fails the transaction. */
static hsm_err_t
InitFail(InitCtx *ctx, const char *msg)
{
    if (msg != NULL) {
	snprintf(ctx->err.msg, sizeof(ctx->err.msg), "%s", msg);
    }
    return HSM_GENERAL_ERROR;
}

/*
 * ReadKeys --
 *	Decodes factory.keys: 1 if decoded, -1 if malformed.
 */
static int
ReadKeys(SimFactory *f, const uint8_t *data, size_t len, ProtoError *err)
{
    ProtoItem item;
    uint64_t v;

    if (proto_find(data, len, FK_VERSION, &item) != 1
	    || proto_item_u64(&item, &v) != 0 || v != KEYS_VERSION
	    || proto_find(data, len, FK_ROOT_ID, &item) != 1
	    || proto_item_u64(&item, &v) != 0 || v == 0 || v > UINT32_MAX) {
	goto bad;
    }
    f->rootKey.keyId = (uint32_t) v;
    if (proto_find(data, len, FK_DFK_ID, &item) != 1
	    || proto_item_u64(&item, &v) != 0 || v == 0 || v > UINT32_MAX) {
	goto bad;
    }
    f->dfkKey.keyId = (uint32_t) v;
    if (proto_find(data, len, FK_ROOT_PUB, &item) != 1
	    || proto_item_fixed(&item, f->root, PROTO_P384_PUB) != 0) {
	goto bad;
    }
    return 1;

  bad:
    snprintf(err->msg, sizeof(err->msg), "the factory record '%s' in %s is "
	    "malformed", KEYS_BLOB, f->hsm->dir);
    return -1;
}

/*
 * InitKeys --
 *	In a transaction of the factory HSM: reads factory.keys, or, on the
 *	first use, makes the root key pair and the DFK-DB key and records
 *	them.  A second process opening a new factory at the same time waits
 *	for the first and reads what it made.
 */
static hsm_err_t
InitKeys(hsm_hdl_t session, void *clientData)
{
    InitCtx *ctx = clientData;
    SimFactory *f = ctx->f;
    uint8_t *data = NULL;
    size_t len;
    int found;
    ProtoBuf b;

    (void) session;
    if (role_blob_read(f->hsm, KEYS_BLOB, &data, &len, &found, &ctx->err)
	    != 0) {
	return InitFail(ctx, NULL);
    }
    if (found) {
	int rc = ReadKeys(f, data, len, &ctx->err);

	free(data);
	return rc == 1 ? HSM_NO_ERROR : InitFail(ctx, NULL);
    }
    if (role_key_generate(f->hsm, f->rootKey.keyStore,
	    HSM_KEY_TYPE_ECDSA_NIST_P384, &f->rootKey.keyId, f->root,
	    PROTO_P384_PUB, &ctx->err) != 0
	    || role_key_generate(f->hsm, f->dfkKey.keyStore,
		HSM_KEY_TYPE_AES_256, &f->dfkKey.keyId, NULL, 0,
		&ctx->err) != 0) {
	return InitFail(ctx, NULL);
    }
    proto_buf_init(&b);
    proto_put_u64(&b, FK_VERSION, KEYS_VERSION);
    proto_put_u64(&b, FK_ROOT_ID, f->rootKey.keyId);
    proto_put_u64(&b, FK_DFK_ID, f->dfkKey.keyId);
    proto_put_bytes(&b, FK_ROOT_PUB, f->root, PROTO_P384_PUB);
    if (b.failed) {
	proto_buf_free(&b);
	return InitFail(ctx, "no memory");
    }
    found = role_blob_write(f->hsm, KEYS_BLOB, b.data, b.len, &ctx->err);
    proto_buf_free(&b);
    return found == 0 ? HSM_NO_ERROR : InitFail(ctx, NULL);
}

/*
 * FactoryDir --
 *	$SPPS_FACTORY, else $SPPS_HOME/factory (malloc'ed), or NULL.
 */
static char *
FactoryDir(void)
{
    const char *env = getenv("SPPS_FACTORY");
    char *home, *dir;

    if (env != NULL && *env != '\0') {
	return strdup(env);
    }
    if ((home = plat_spps_home()) == NULL) {
	return NULL;
    }
    dir = plat_join(home, "factory");
    free(home);
    return dir;
}

/* sim_factory_open -- opens the factory HSM and its keys (sim_factory.h). */
int
sim_factory_open(SimFactory **factory, ProtoError *err)
{
    SimFactory *f;
    InitCtx ctx;
    hsm_err_t code;
    uint8_t pub[PROTO_P384_PUB];
    char *dir;

    *factory = NULL;
    if ((dir = FactoryDir()) == NULL) {
	snprintf(err->msg, sizeof(err->msg), "cannot find the factory "
		"directory: set SPPS_FACTORY or SPPS_HOME");
	return -1;
    }
    if ((f = calloc(1, sizeof(*f))) == NULL) {
	free(dir);
	snprintf(err->msg, sizeof(err->msg), "no memory");
	return -1;
    }
    if (role_hsm_open_dir(dir, &f->hsm, err) != 0) {
	char msg[sizeof(err->msg)];

	snprintf(msg, sizeof(msg), "simulated factory: %.400s", err->msg);
	memcpy(err->msg, msg, sizeof(msg));
	free(dir);
	free(f);
	return -1;
    }
    free(dir);
    f->rootKey.hsm = f->dfkKey.hsm = f->hsm;
    if (role_key_store_open(f->hsm, ROLE_FW_STORE_FACTORY,
	    &f->rootKey.keyStore, err) != 0) {
	goto fail;
    }
    f->dfkKey.keyStore = f->rootKey.keyStore;
    memset(&ctx, 0, sizeof(ctx));
    ctx.f = f;
    code = hsm_fw_transaction(f->hsm->session, InitKeys, &ctx);
    if (code != HSM_NO_ERROR) {
	if (ctx.err.msg[0] != '\0') {
	    *err = ctx.err;
	} else {
	    role_hsm_error(err, "simulated factory", code);
	}
	goto fail;
    }
    /* The record and the key store must agree. */
    if (role_key_public(&f->rootKey, pub, err) != 0) {
	goto fail;
    }
    if (memcmp(pub, f->root, PROTO_P384_PUB) != 0) {
	snprintf(err->msg, sizeof(err->msg), "simulated factory at %s: the "
		"root key does not match its record", f->hsm->dir);
	goto fail;
    }
    *factory = f;
    return 0;

  fail:
    sim_factory_close(f);
    return -1;
}

/* sim_factory_close -- closes the factory. */
void
sim_factory_close(SimFactory *f)
{
    if (f == NULL) {
	return;
    }
    role_hsm_close(f->hsm);
    OPENSSL_cleanse(f, sizeof(*f));
    free(f);
}

/* sim_factory_dir -- the factory's state directory. */
const char *
sim_factory_dir(const SimFactory *f)
{
    return f->hsm->dir;
}

/* sim_factory_root -- the vendor root public key. */
int
sim_factory_root(SimFactory *f, uint8_t root[PROTO_P384_PUB], ProtoError *err)
{
    (void) err;
    memcpy(root, f->root, PROTO_P384_PUB);
    return 0;
}

/* ------------------------------------------------------------------ */
/* Certificates                                                         */
/* ------------------------------------------------------------------ */

typedef struct SerialCtx {
    SimFactory *f;
    uint64_t serial;
    ProtoError err;
} SerialCtx;

/*
 * NextSerial --
 *	In a transaction: the serial after the last one issued, recorded
 *	durably before it is used.
 */
static hsm_err_t
NextSerial(hsm_hdl_t session, void *clientData)
{
    SerialCtx *ctx = clientData;
    uint8_t *data = NULL, buf[8];
    size_t len;
    int found;
    uint64_t last = 0;

    (void) session;
    if (role_blob_read(ctx->f->hsm, SERIAL_BLOB, &data, &len, &found,
	    &ctx->err) != 0) {
	return HSM_GENERAL_ERROR;
    }
    if (found) {
	if (len != 8) {
	    free(data);
	    snprintf(ctx->err.msg, sizeof(ctx->err.msg), "the factory record "
		    "'%s' is malformed", SERIAL_BLOB);
	    return HSM_GENERAL_ERROR;
	}
	last = ((uint64_t) data[0] << 56) | ((uint64_t) data[1] << 48)
		| ((uint64_t) data[2] << 40) | ((uint64_t) data[3] << 32)
		| ((uint64_t) data[4] << 24) | ((uint64_t) data[5] << 16)
		| ((uint64_t) data[6] << 8) | (uint64_t) data[7];
	free(data);
    }
    ctx->serial = last + 1;
    buf[0] = (uint8_t) (ctx->serial >> 56);
    buf[1] = (uint8_t) (ctx->serial >> 48);
    buf[2] = (uint8_t) (ctx->serial >> 40);
    buf[3] = (uint8_t) (ctx->serial >> 32);
    buf[4] = (uint8_t) (ctx->serial >> 24);
    buf[5] = (uint8_t) (ctx->serial >> 16);
    buf[6] = (uint8_t) (ctx->serial >> 8);
    buf[7] = (uint8_t) ctx->serial;
    if (role_blob_write(ctx->f->hsm, SERIAL_BLOB, buf, 8, &ctx->err) != 0) {
	return HSM_GENERAL_ERROR;
    }
    return HSM_NO_ERROR;
}

/* IsDsnHex -- 1 if s is exactly 32 lower-case hex digits. */
static int
IsDsnHex(const char *s)
{
    size_t i;

    for (i = 0; i < 2 * PROTO_DSN; i++) {
	if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
	    return 0;
	}
    }
    return s[i] == '\0';
}

/*
 * CheckRequest --
 *	What the factory refuses to certify, before anything is used up.
 *	A device's die is canonicalised ("m2s090ts" -> "M2S090").
 */
static int
CheckRequest(ProtoCert *cert, ProtoError *err)
{
    const char *kind = proto_cert_kind_name(cert->kind);
    char canon[41], quoted[48];
    size_t i;

    if (kind == NULL || cert->kind == PROTO_CERT_ROOT) {
	snprintf(err->msg, sizeof(err->msg), "the factory does not certify "
		"%s", kind == NULL ? "certificates of an unknown kind"
		: "another vendor root");
	return -1;
    }
    if (memchr(cert->subject, 0, sizeof(cert->subject)) == NULL
	    || memchr(cert->die, 0, sizeof(cert->die)) == NULL) {
	snprintf(err->msg, sizeof(err->msg), "certificate request: the "
		"subject or die is not terminated");
	return -1;
    }
    for (i = 0; cert->subject[i] != '\0' && i < sizeof(quoted) - 1; i++) {
	char c = cert->subject[i];

	quoted[i] = (c >= 0x20 && c < 0x7F) ? c : '?';
    }
    quoted[i] = '\0';
    if (cert->kind == PROTO_CERT_DEVICE) {
	if (!IsDsnHex(cert->subject)) {
	    snprintf(err->msg, sizeof(err->msg), "certificate request: the "
		    "device subject '%s' is not a DSN (32 lower-case hex "
		    "digits)", quoted);
	    return -1;
	}
	if (sim_die_canon(cert->die, canon) != 0) {
	    snprintf(err->msg, sizeof(err->msg), "certificate request: "
		    "unknown die '%.31s'", cert->die);
	    return -1;
	}
	if (!sim_die_has_kfp(canon)) {
	    snprintf(err->msg, sizeof(err->msg), "certificate request: the "
		    "die %s has no factory key pair (KFP)", canon);
	    return -1;
	}
	memset(cert->die, 0, sizeof(cert->die));
	memcpy(cert->die, canon, strlen(canon) + 1);
	if (cert->hasEncKey) {
	    snprintf(err->msg, sizeof(err->msg), "certificate request: a "
		    "device has no sealing key");
	    return -1;
	}
    } else {
	if (proto_uuid_canon(cert->subject, canon, NULL) != 0
		|| strcmp(canon, cert->subject) != 0) {
	    snprintf(err->msg, sizeof(err->msg), "certificate request: the "
		    "%s subject '%s' is not a UUID in canonical form", kind,
		    quoted);
	    return -1;
	}
	if (cert->die[0] != '\0') {
	    snprintf(err->msg, sizeof(err->msg), "certificate request: an "
		    "HSM has no die");
	    return -1;
	}
	if ((cert->kind == PROTO_CERT_MHSM) != (cert->hasEncKey != 0)) {
	    snprintf(err->msg, sizeof(err->msg), "certificate request: %s",
		    cert->kind == PROTO_CERT_MHSM
		    ? "an M-HSM needs a sealing key"
		    : "only an M-HSM has a sealing key");
	    return -1;
	}
    }
    if (!proto_p384_valid(cert->signKey)
	    || (cert->hasEncKey && !proto_p384_valid(cert->encKey))) {
	snprintf(err->msg, sizeof(err->msg), "certificate request for %s: a "
		"key is not a valid P-384 public key", quoted);
	return -1;
    }
    return 0;
}

/* sim_factory_certify -- issues a certificate (sim_factory.h). */
int
sim_factory_certify(SimFactory *f, ProtoCert *cert, ProtoError *err)
{
    SerialCtx ctx;
    hsm_err_t code;
    ProtoBuf tbs;
    int rc;

    if (CheckRequest(cert, err) != 0) {
	return -1;
    }
    memset(&ctx, 0, sizeof(ctx));
    ctx.f = f;
    code = hsm_fw_transaction(f->hsm->session, NextSerial, &ctx);
    if (code != HSM_NO_ERROR) {
	if (ctx.err.msg[0] != '\0') {
	    *err = ctx.err;
	} else {
	    role_hsm_error(err, "simulated factory: serial", code);
	}
	return -1;
    }
    cert->serial = ctx.serial;
    cert->issued = (uint64_t) time(NULL);
    proto_buf_init(&tbs);
    if (proto_cert_tbs(cert, &tbs) != 0) {
	proto_buf_free(&tbs);
	snprintf(err->msg, sizeof(err->msg), "certificate: no memory");
	return -1;
    }
    rc = role_sign(&f->rootKey, tbs.data, tbs.len, cert->signature, err);
    proto_buf_free(&tbs);
    if (rc != 0) {
	return -1;
    }
    /* What we issue must check. */
    return proto_cert_verify(cert, cert->kind, f->root, err);
}

/* ------------------------------------------------------------------ */
/* The DFK-DB key                                                       */
/* ------------------------------------------------------------------ */

typedef struct DfkCtx {
    const uint8_t *recipient;		/* seal: M-HSM sealing key */
    const uint8_t *dsn;			/* derive: the device */
    uint8_t *sealed;
    size_t sealedLen;
    uint8_t fk[PROTO_KEY];
    ProtoError err;
} DfkCtx;

/* WithDfkKey --
 *	hsm_fw_key_use callback: seals or derives with the DFK-DB key. */
static hsm_err_t
WithDfkKey(const HsmFwKey *key, void *clientData)
{
    DfkCtx *ctx = clientData;

    if (key->type != HSM_KEY_TYPE_AES_256 || key->secretLen != PROTO_KEY) {
	snprintf(ctx->err.msg, sizeof(ctx->err.msg), "the factory's DFK-DB "
		"key is not an AES-256 key");
	return HSM_INVALID_PARAM;
    }
    if (ctx->recipient != NULL) {
	if (proto_seal_p384(ctx->recipient, "dfk-db", NULL, 0, key->secret,
		PROTO_KEY, &ctx->sealed, &ctx->sealedLen, &ctx->err) != 0) {
	    return HSM_GENERAL_ERROR;
	}
    } else if (proto_hkdf(key->secret, PROTO_KEY, ctx->dsn, PROTO_DSN,
	    "spps dfk v1", ctx->fk, PROTO_KEY) != 0) {
	snprintf(ctx->err.msg, sizeof(ctx->err.msg), "cannot derive the "
		"device factory key");
	return HSM_GENERAL_ERROR;
    }
    return HSM_NO_ERROR;
}

/* UseDfk -- runs WithDfkKey on the DFK-DB key. */
static int
UseDfk(SimFactory *f, DfkCtx *ctx, ProtoError *err)
{
    hsm_err_t code = hsm_fw_key_use(f->dfkKey.keyStore, f->dfkKey.keyId,
	    WithDfkKey, ctx);

    if (code != HSM_NO_ERROR) {
	if (ctx->err.msg[0] != '\0') {
	    *err = ctx->err;
	} else {
	    role_hsm_error(err, "simulated factory: DFK-DB key", code);
	}
	return -1;
    }
    return 0;
}

/* sim_factory_seal_dfk_key --
 *	the DFK-DB key sealed to a valid M-HSM certificate. */
int
sim_factory_seal_dfk_key(SimFactory *f, const ProtoCert *mhsmCert,
	uint8_t **sealed, size_t *sealedLen, ProtoError *err)
{
    DfkCtx ctx;
    ProtoError cerr;

    *sealed = NULL;
    *sealedLen = 0;
    if (proto_cert_verify(mhsmCert, PROTO_CERT_MHSM, f->root, &cerr) != 0) {
	snprintf(err->msg, sizeof(err->msg), "the factory does not deliver "
		"the DFK-DB key: %.400s", cerr.msg);
	return -1;
    }
    memset(&ctx, 0, sizeof(ctx));
    ctx.recipient = mhsmCert->encKey;
    if (UseDfk(f, &ctx, err) != 0) {
	return -1;
    }
    *sealed = ctx.sealed;
    *sealedLen = ctx.sealedLen;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Devices                                                              */
/* ------------------------------------------------------------------ */

int
sim_factory_device_keys(SimFactory *f, const uint8_t dsn[PROTO_DSN],
	const char *die, const uint8_t benchKey[PROTO_P384_PUB],
	uint8_t **sealedSecrets, size_t *sealedLen, int *hasKfp,
	ProtoCert *kfpCert, ProtoError *err)
{
    DfkCtx ctx;
    EVP_PKEY *kfp = NULL;
    uint8_t scalar[48];
    char canon[32];
    ProtoBuf b;
    int rc = -1;

    *sealedSecrets = NULL;
    *sealedLen = 0;
    *hasKfp = 0;
    memset(kfpCert, 0, sizeof(*kfpCert));
    if (sim_die_canon(die, canon) != 0) {
	snprintf(err->msg, sizeof(err->msg), "the factory makes no die "
		"'%.40s'", die != NULL ? die : "");
	return -1;
    }
    if (!proto_p384_valid(benchKey)) {
	snprintf(err->msg, sizeof(err->msg), "the bench key is not a valid "
		"P-384 public key");
	return -1;
    }
    memset(&ctx, 0, sizeof(ctx));
    ctx.dsn = dsn;
    if (UseDfk(f, &ctx, err) != 0) {
	return -1;
    }
    proto_buf_init(&b);
    proto_put_bytes(&b, DS_DSN, dsn, PROTO_DSN);
    proto_put_bytes(&b, DS_FK, ctx.fk, PROTO_KEY);
    if (sim_die_has_kfp(canon)) {
	if (proto_p384_generate(&kfp, kfpCert->signKey, err) != 0
		|| proto_p384_private_bytes(kfp, scalar) != 0) {
	    if (kfp != NULL) {
		snprintf(err->msg, sizeof(err->msg), "KFP: no private key");
	    }
	    goto done;
	}
	kfpCert->kind = PROTO_CERT_DEVICE;
	proto_hex(dsn, PROTO_DSN, kfpCert->subject);
	memcpy(kfpCert->die, canon, strlen(canon) + 1);
	if (sim_factory_certify(f, kfpCert, err) != 0) {
	    goto done;
	}
	proto_put_bytes(&b, DS_KFP, scalar, sizeof(scalar));
	*hasKfp = 1;
    }
    if (b.failed) {
	snprintf(err->msg, sizeof(err->msg), "device secrets: no memory");
	goto done;
    }
    rc = proto_seal_p384(benchKey, SIM_DEVICE_SECRETS_LABEL, dsn, PROTO_DSN,
	    b.data, b.len, sealedSecrets, sealedLen, err);

  done:
    if (rc != 0) {
	*hasKfp = 0;
	memset(kfpCert, 0, sizeof(*kfpCert));
    }
    EVP_PKEY_free(kfp);
    OPENSSL_cleanse(scalar, sizeof(scalar));
    OPENSSL_cleanse(&ctx, sizeof(ctx));
    proto_buf_free(&b);
    return rc;
}
