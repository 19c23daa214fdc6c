/*
 * sim_device.c --
 *
 *	Simulated devices (sim.h): each one is a firmware blob "dev.<dsn>" of
 *	the bench's HSM holding what the silicon holds (docs/FORMATS.md,
 *	"Bench"): its factory key FK and, on dies that have one, its KFP
 *	scalar and certificate (both made by the factory and sealed to the
 *	bench's key), and its programmed state.  A device runs its side of
 *	every protocol itself: it answers the authenticity check with its own
 *	keys, opens only a code made for it in this session, decrypts and
 *	checks the bitstream, and MACs its CoC under the bitstream key.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "plat.h"
#include "roles/role_common.h"
#include "sim/sim.h"
#include "sim/sim_factory.h"

#define BENCH_ID_BLOB "bench.identity"
#define DEVICE_VERSION 1
#define MAX_REGIONS 1024		/* eNVM / sNVM clients, settings, keys */
#define CONTENT_LABEL "spps device content v1"

/* Tags (docs/FORMATS.md, "Bench"). */
enum { BI_VERSION = 1, BI_KEY = 2, BI_PUB = 3 };
enum { DV_VERSION = 1, DV_DSN = 2, DV_DIE = 3, DV_FK = 4, DV_KFP = 5,
       DV_CERT = 6, DV_PROGRAMMED = 7, DV_DESIGN = 8, DV_DESIGN_DIGEST = 9,
       DV_FABRIC = 10, DV_ENVM = 11, DV_SNVM = 12, DV_SECURITY = 13,
       DV_KEY = 14, DV_ACTIONS = 15, DV_COCS = 16, DV_INTERRUPTED = 17,
       DV_CONTENT = 18 };
enum { NV_NAME = 1, NV_VALUE = 2 };
/* The content digest's record. */
enum { CT_LABEL = 1, CT_DESIGN = 2, CT_FABRIC = 3, CT_ENVM = 4, CT_SNVM = 5,
       CT_SECURITY = 6, CT_KEY = 7 };

/* A name and bytes: a region's digest, a setting's text, a key's value. */
typedef struct Named {
    char *name;
    uint8_t *data;
    size_t len;
} Named;

typedef struct NamedList {
    size_t n;
    Named *v;
} NamedList;

/* What the device holds. */
typedef struct Device {
    uint8_t dsn[PROTO_DSN];
    char die[32];
    uint8_t fk[PROTO_KEY];
    int hasKfp;
    uint8_t kfp[48];
    ProtoCert cert;
    int programmed;
    char *designName;
    uint8_t designDigest[PROTO_DIGEST];
    uint8_t fabricDigest[PROTO_DIGEST];
    uint8_t contentDigest[PROTO_DIGEST];	/* stored at the last change */
    NamedList envm, snvm;		/* name -> SHA-384 of the content */
    NamedList security;			/* name -> value */
    NamedList keys;			/* name -> 32-byte value */
    uint64_t actions, cocs;
    int interrupted;
} Device;

struct SimSession {
    SimBench *bench;
    char prg[SIM_NAME_MAX + 1];
    uint8_t dsn[PROTO_DSN];
    int challenged;
    uint8_t challenge[PROTO_NONCE];
    EVP_PKEY *d;			/* KFPE: this session's ephemeral key */
};

static int
DevFail(SimError *err, SimCond cond, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(printf, 3, 4)))
#endif
	;
static int
DevFail(SimError *err, SimCond cond, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL) {
	err->cond = cond;
	va_start(ap, fmt);
	vsnprintf(err->e.msg, sizeof(err->e.msg), fmt, ap);
	va_end(ap);
    }
    return -1;
}

/*
 * Dup --
 *	A malloc'ed copy of a string.
 */
static char *
Dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);

    if (d != NULL) {
	memcpy(d, s, n);
    }
    return d;
}

/*
 *----------------------------------------------------------------------
 *
 * Named lists.
 *
 *----------------------------------------------------------------------
 */

/*
 * ListFree --
 *	Frees a list of named values, cleansing them (keys are among
 *	them).
 */
static void
ListFree(NamedList *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
	free(l->v[i].name);
	if (l->v[i].data != NULL) {
	    OPENSSL_cleanse(l->v[i].data, l->v[i].len);
	    free(l->v[i].data);
	}
    }
    free(l->v);
    l->n = 0;
    l->v = NULL;
}

/*
 * ListAdd --
 *	Adds a name and a copy of its value to a list.
 */
static int
ListAdd(NamedList *l, const char *name, const void *data, size_t len)
{
    Named *grown;

    if (l->n == MAX_REGIONS) {
	return -1;
    }
    if ((grown = realloc(l->v, (l->n + 1) * sizeof(*l->v))) == NULL) {
	return -1;
    }
    l->v = grown;
    grown[l->n].name = Dup(name);
    grown[l->n].data = malloc(len > 0 ? len : 1);
    grown[l->n].len = len;
    if (grown[l->n].name == NULL || grown[l->n].data == NULL) {
	free(grown[l->n].name);
	free(grown[l->n].data);
	return -1;
    }
    if (len > 0) {
	memcpy(grown[l->n].data, data, len);
    }
    l->n++;
    return 0;
}

/* Adds name -> SHA-384(data). */
static int
ListAddDigest(NamedList *l, const char *name, const uint8_t *data, size_t len)
{
    uint8_t d[PROTO_DIGEST];

    if (proto_sha384(data, len, d) != 0) {
	return -1;
    }
    return ListAdd(l, name, d, sizeof(d));
}

/*
 * ListPut --
 *	Encodes a list as repeated items of a record.
 */
static void
ListPut(ProtoBuf *b, uint16_t tag, const NamedList *l)
{
    size_t i, mark;

    for (i = 0; i < l->n; i++) {
	mark = proto_begin(b, tag);
	proto_put_str(b, NV_NAME, l->v[i].name);
	proto_put_bytes(b, NV_VALUE, l->v[i].data, l->v[i].len);
	proto_end(b, mark);
    }
}

/*
 * ListGet --
 *	Decodes the repeated items of a record into a list.
 */
static int
ListGet(const uint8_t *data, size_t len, uint16_t tag, NamedList *l)
{
    ProtoReader r;
    ProtoItem item, name, value;
    char *s;

    proto_reader_init(&r, data, len);
    while (proto_next(&r, &item) == 1) {
	if (item.tag != tag) {
	    continue;
	}
	if (proto_find(item.val, item.len, NV_NAME, &name) != 1
		|| proto_find(item.val, item.len, NV_VALUE, &value) != 1
		|| proto_item_str(&name, &s) != 0) {
	    return -1;
	}
	if (ListAdd(l, s, value.val, value.len) != 0) {
	    free(s);
	    return -1;
	}
	free(s);
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * Device records.
 *
 *----------------------------------------------------------------------
 */

/*
 * DeviceClearDesign --
 *	Erases the design of a device (ERASE, an interrupted PROGRAM):
 *	its security settings and keys stay (an ERASE of a bitstream with
 *	the SECURITY feature clears them itself).
 */
static void
DeviceClearDesign(Device *d)
{
    free(d->designName);
    d->designName = NULL;
    d->programmed = 0;
    memset(d->designDigest, 0, PROTO_DIGEST);
    memset(d->fabricDigest, 0, PROTO_DIGEST);
    ListFree(&d->envm);
    ListFree(&d->snvm);
}

/*
 * HasFeature --
 *	1 if the space-separated feature list (canonical upper case, as
 *	docs/FORMATS.md has it) names feature.
 */
static int
HasFeature(const char *features, const char *feature)
{
    size_t n = strlen(feature);
    const char *p = features;

    while (p != NULL && *p != '\0') {
	while (*p == ' ') {
	    p++;
	}
	if (strncmp(p, feature, n) == 0 && (p[n] == ' ' || p[n] == '\0')) {
	    return 1;
	}
	p = strchr(p, ' ');
    }
    return 0;
}

/*
 * DeviceFree --
 *	Frees a device, cleansing its keys.
 */
static void
DeviceFree(Device *d)
{
    DeviceClearDesign(d);
    ListFree(&d->security);
    ListFree(&d->keys);
    OPENSSL_cleanse(d, sizeof(*d));
}

/*
 * ContentDigest --
 *	SHA-384 of what a device holds (docs/FORMATS.md, "Bench"): the
 *	design and its digests, security settings, and each key's name with
 *	the SHA-384 of its value.  A blank device's is that of the label
 *	alone.
 */
static int
ContentDigest(const Device *d, uint8_t out[PROTO_DIGEST])
{
    ProtoBuf b;
    size_t i, mark;
    int rc;

    proto_buf_init(&b);
    proto_put_str(&b, CT_LABEL, CONTENT_LABEL);
    if (d->programmed) {
	proto_put_bytes(&b, CT_DESIGN, d->designDigest, PROTO_DIGEST);
	proto_put_bytes(&b, CT_FABRIC, d->fabricDigest, PROTO_DIGEST);
	ListPut(&b, CT_ENVM, &d->envm);
	ListPut(&b, CT_SNVM, &d->snvm);
    }
    ListPut(&b, CT_SECURITY, &d->security);
    for (i = 0; i < d->keys.n; i++) {
	uint8_t h[PROTO_DIGEST];

	if (proto_sha384(d->keys.v[i].data, d->keys.v[i].len, h) != 0) {
	    b.failed = 1;
	}
	mark = proto_begin(&b, CT_KEY);
	proto_put_str(&b, NV_NAME, d->keys.v[i].name);
	proto_put_bytes(&b, NV_VALUE, h, sizeof(h));
	proto_end(&b, mark);
    }
    rc = b.failed ? -1 : proto_sha384(b.data, b.len, out);
    proto_buf_free(&b);
    return rc;
}

/*
 * DeviceBlobName --
 *	The blob name of a device: "dev." and its DSN.
 */
static void
DeviceBlobName(const uint8_t dsn[PROTO_DSN], char name[64])
{
    char hex[2 * PROTO_DSN + 1];

    sim_dsn_format(dsn, hex);
    snprintf(name, 64, "dev.%s", hex);
}

/*
 * DeviceWrite --
 *	Writes a device's record (a blob of the bench's HSM: its keys are
 *	never on disk in clear).
 */
static int
DeviceWrite(SimBench *bench, const Device *d, SimError *err)
{
    ProtoBuf b;
    ProtoError pe;
    char name[64];
    int rc;

    proto_buf_init(&b);
    proto_put_u64(&b, DV_VERSION, DEVICE_VERSION);
    proto_put_bytes(&b, DV_DSN, d->dsn, PROTO_DSN);
    proto_put_str(&b, DV_DIE, d->die);
    proto_put_bytes(&b, DV_FK, d->fk, PROTO_KEY);
    if (d->hasKfp) {
	proto_put_bytes(&b, DV_KFP, d->kfp, sizeof(d->kfp));
	proto_cert_put(&b, DV_CERT, &d->cert);
    }
    proto_put_u64(&b, DV_PROGRAMMED, (uint64_t) d->programmed);
    if (d->programmed) {
	proto_put_str(&b, DV_DESIGN, d->designName ? d->designName : "");
	proto_put_bytes(&b, DV_DESIGN_DIGEST, d->designDigest, PROTO_DIGEST);
	proto_put_bytes(&b, DV_FABRIC, d->fabricDigest, PROTO_DIGEST);
	ListPut(&b, DV_ENVM, &d->envm);
	ListPut(&b, DV_SNVM, &d->snvm);
    }
    ListPut(&b, DV_SECURITY, &d->security);
    ListPut(&b, DV_KEY, &d->keys);
    proto_put_u64(&b, DV_ACTIONS, d->actions);
    proto_put_u64(&b, DV_COCS, d->cocs);
    proto_put_u64(&b, DV_INTERRUPTED, (uint64_t) d->interrupted);
    proto_put_bytes(&b, DV_CONTENT, d->contentDigest, PROTO_DIGEST);
    if (b.failed) {
	proto_buf_free(&b);
	return DevFail(err, SIM_FAIL, "device record: no memory");
    }
    DeviceBlobName(d->dsn, name);
    rc = role_blob_write(sim_bench_hsm(bench), name, b.data, b.len, &pe);
    proto_buf_free(&b);
    return rc == 0 ? 0 : DevFail(err, SIM_FAIL, "%s", pe.msg);
}

/*
 * GetU64 --
 *	An unsigned 64-bit field of a record.
 */
static int
GetU64(const uint8_t *data, size_t len, uint16_t tag, uint64_t *v)
{
    ProtoItem item;

    return (proto_find(data, len, tag, &item) == 1
	    && proto_item_u64(&item, v) == 0) ? 0 : -1;
}

/*
 * GetFixed --
 *	A field of exactly n bytes.
 */
static int
GetFixed(const uint8_t *data, size_t len, uint16_t tag, void *out, size_t n)
{
    ProtoItem item;

    return (proto_find(data, len, tag, &item) == 1
	    && proto_item_fixed(&item, out, n) == 0) ? 0 : -1;
}

/*
 * DeviceDecode --
 *	Decodes a device's record.
 */
static int
DeviceDecode(const uint8_t *data, size_t len, Device *d)
{
    ProtoItem item;
    uint64_t version, programmed, interrupted;
    char *s = NULL;

    memset(d, 0, sizeof(*d));
    if (GetU64(data, len, DV_VERSION, &version) != 0 || version != DEVICE_VERSION
	    || GetFixed(data, len, DV_DSN, d->dsn, PROTO_DSN) != 0
	    || proto_find(data, len, DV_DIE, &item) != 1
	    || item.len >= sizeof(d->die) || proto_item_str(&item, &s) != 0
	    || GetFixed(data, len, DV_FK, d->fk, PROTO_KEY) != 0
	    || GetU64(data, len, DV_PROGRAMMED, &programmed) != 0
	    || GetU64(data, len, DV_ACTIONS, &d->actions) != 0
	    || GetU64(data, len, DV_COCS, &d->cocs) != 0
	    || GetU64(data, len, DV_INTERRUPTED, &interrupted) != 0
	    || GetFixed(data, len, DV_CONTENT, d->contentDigest,
		    PROTO_DIGEST) != 0) {
	free(s);
	return -1;
    }
    memcpy(d->die, s, strlen(s) + 1);
    free(s);
    d->programmed = programmed != 0;
    d->interrupted = interrupted != 0;
    if (proto_find(data, len, DV_KFP, &item) == 1) {
	if (proto_item_fixed(&item, d->kfp, sizeof(d->kfp)) != 0
		|| proto_find(data, len, DV_CERT, &item) != 1
		|| proto_cert_get(&item, &d->cert, NULL) != 0) {
	    goto error;
	}
	d->hasKfp = 1;
    }
    if (d->programmed) {
	if (proto_find(data, len, DV_DESIGN, &item) != 1
		|| proto_item_str(&item, &d->designName) != 0
		|| GetFixed(data, len, DV_DESIGN_DIGEST, d->designDigest,
			PROTO_DIGEST) != 0
		|| GetFixed(data, len, DV_FABRIC, d->fabricDigest,
			PROTO_DIGEST) != 0
		|| ListGet(data, len, DV_ENVM, &d->envm) != 0
		|| ListGet(data, len, DV_SNVM, &d->snvm) != 0) {
	    goto error;
	}
    }
    if (ListGet(data, len, DV_SECURITY, &d->security) != 0
	    || ListGet(data, len, DV_KEY, &d->keys) != 0) {
	goto error;
    }
    return 0;
  error:
    DeviceFree(d);
    return -1;
}

/* Reads a device: 1, 0 if the bench has none of that DSN, -1. */
static int
DeviceRead(SimBench *bench, const uint8_t dsn[PROTO_DSN], Device *d,
	SimError *err)
{
    ProtoError pe;
    uint8_t *data = NULL;
    size_t len = 0;
    char name[64], hex[2 * PROTO_DSN + 1];
    int found, rc;

    DeviceBlobName(dsn, name);
    if (role_blob_read(sim_bench_hsm(bench), name, &data, &len, &found,
	    &pe) != 0) {
	return DevFail(err, SIM_FAIL, "%s", pe.msg);
    }
    if (!found) {
	return 0;
    }
    rc = DeviceDecode(data, len, d);
    OPENSSL_cleanse(data, len);
    free(data);
    if (rc != 0 || memcmp(d->dsn, dsn, PROTO_DSN) != 0) {
	if (rc == 0) {
	    DeviceFree(d);
	}
	sim_dsn_format(dsn, hex);
	return DevFail(err, SIM_FAIL, "the bench record of device %s is "
		"damaged", hex);
    }
    return 1;
}

/*
 * sim_device_exists --
 *	Whether the bench knows a device, and its die.
 */
int
sim_device_exists(SimBench *bench, const uint8_t dsn[PROTO_DSN], char die[32],
	SimError *err)
{
    Device d;
    int rc;

    if ((rc = DeviceRead(bench, dsn, &d, err)) == 1) {
	memcpy(die, d.die, sizeof(d.die));
	DeviceFree(&d);
    }
    return rc;
}

/*
 *----------------------------------------------------------------------
 *
 * BenchKey --
 *	The bench's sealing key (P-384, firmware key store
 *	ROLE_FW_STORE_BENCH): the factory seals each new device's secrets to
 *	it.  Made on first use; called inside a bench transaction.
 *
 *----------------------------------------------------------------------
 */

static int
BenchKey(SimBench *bench, RoleKey *key, uint8_t pub[PROTO_P384_PUB],
	SimError *err)
{
    RoleHsm *hsm = sim_bench_hsm(bench);
    ProtoError pe;
    ProtoBuf b;
    uint8_t *data = NULL;
    size_t len = 0;
    uint64_t version, id;
    int found;

    key->hsm = hsm;
    if (role_key_store_open(hsm, ROLE_FW_STORE_BENCH, &key->keyStore, &pe) != 0
	    || role_blob_read(hsm, BENCH_ID_BLOB, &data, &len, &found, &pe) != 0) {
	return DevFail(err, SIM_FAIL, "bench key: %s", pe.msg);
    }
    if (found) {
	int bad = GetU64(data, len, BI_VERSION, &version) != 0 || version != 1
		|| GetU64(data, len, BI_KEY, &id) != 0 || id > UINT32_MAX
		|| GetFixed(data, len, BI_PUB, pub, PROTO_P384_PUB) != 0;

	free(data);
	if (bad) {
	    hsm_close_key_store_service(key->keyStore);
	    return DevFail(err, SIM_FAIL, "the bench identity record is "
		    "damaged");
	}
	key->keyId = (uint32_t) id;
	return 0;
    }
    if (role_key_generate(hsm, key->keyStore, HSM_KEY_TYPE_ECDSA_NIST_P384,
	    &key->keyId, pub, PROTO_P384_PUB, &pe) != 0) {
	hsm_close_key_store_service(key->keyStore);
	return DevFail(err, SIM_FAIL, "bench key: %s", pe.msg);
    }
    proto_buf_init(&b);
    proto_put_u64(&b, BI_VERSION, 1);
    proto_put_u64(&b, BI_KEY, key->keyId);
    proto_put_bytes(&b, BI_PUB, pub, PROTO_P384_PUB);
    if (b.failed || role_blob_write(hsm, BENCH_ID_BLOB, b.data, b.len,
	    &pe) != 0) {
	proto_buf_free(&b);
	hsm_close_key_store_service(key->keyStore);
	return DevFail(err, SIM_FAIL, "bench key: %s", b.failed ? "no memory"
		: pe.msg);
    }
    proto_buf_free(&b);
    return 0;
}

/*
 * sim_device_make --
 *	Manufactures a device: the factory makes its keys, sealed to the
 *	bench key; the bench opens them and keeps them in the device's
 *	record.
 */
int
sim_device_make(SimBench *bench, const uint8_t dsn[PROTO_DSN], const char *die,
	SimError *err)
{
    SimFactory *factory = NULL;
    ProtoDeviceSecrets secrets;
    ProtoError pe;
    RoleKey key;
    Device d;
    uint8_t pub[PROTO_P384_PUB], *sealed = NULL, *plain = NULL;
    size_t sealedLen = 0, plainLen = 0;
    char canon[32];
    int hasKfp = 0, rc = -1;

    memset(&d, 0, sizeof(d));
    memset(&secrets, 0, sizeof(secrets));
    if (sim_die_canon(die, canon) != 0) {
	return DevFail(err, SIM_BAD_VALUE, "unknown die '%.40s'", die);
    }
    die = canon;
    if (BenchKey(bench, &key, pub, err) != 0) {
	return -1;
    }
    if (sim_factory_open(&factory, &pe) != 0
	    || sim_factory_device_keys(factory, dsn, die, pub, &sealed,
		    &sealedLen, &hasKfp, &d.cert, &pe) != 0
	    || proto_open_p384(pub, SIM_DEVICE_SECRETS_LABEL, role_ecdh, &key, dsn,
		    PROTO_DSN,
		    sealed, sealedLen, &plain, &plainLen, &pe) != 0
	    || proto_device_secrets_decode(plain, plainLen, &secrets, &pe) != 0) {
	DevFail(err, SIM_FAIL, "cannot manufacture a %s: %s", die, pe.msg);
	goto done;
    }
    if (memcmp(secrets.dsn, dsn, PROTO_DSN) != 0 || secrets.hasKfp != hasKfp) {
	DevFail(err, SIM_FAIL, "the factory sent the secrets of another "
		"device");
	goto done;
    }
    memcpy(d.dsn, dsn, PROTO_DSN);
    snprintf(d.die, sizeof(d.die), "%s", die);
    memcpy(d.fk, secrets.fk, PROTO_KEY);
    d.hasKfp = hasKfp;
    if (hasKfp) {
	memcpy(d.kfp, secrets.kfp, sizeof(d.kfp));
    }
    if (ContentDigest(&d, d.contentDigest) != 0) {
	DevFail(err, SIM_FAIL, "no memory");
	goto done;
    }
    rc = DeviceWrite(bench, &d, err);
  done:
    if (plain != NULL) {
	OPENSSL_cleanse(plain, plainLen);
	free(plain);
    }
    free(sealed);
    OPENSSL_cleanse(&secrets, sizeof(secrets));
    DeviceFree(&d);
    sim_factory_close(factory);
    hsm_close_key_store_service(key.keyStore);
    return rc;
}

/*
 *----------------------------------------------------------------------
 *
 * Information.
 *
 *----------------------------------------------------------------------
 */

/*
 * FillInfo --
 *	What the bench shows of a device (no secret).
 */
static void
FillInfo(const Device *d, const char *prg, SimDeviceInfo *info)
{
    const char *family = sim_die_family(d->die);
    size_t i, n = 0;

    memset(info, 0, sizeof(*info));
    memcpy(info->dsn, d->dsn, PROTO_DSN);
    snprintf(info->die, sizeof(info->die), "%s", d->die);
    snprintf(info->family, sizeof(info->family), "%s", family ? family : "");
    info->hasKfp = d->hasKfp;
    snprintf(info->programmer, sizeof(info->programmer), "%s", prg ? prg : "");
    info->programmed = d->programmed;
    if (d->programmed) {
	snprintf(info->designName, sizeof(info->designName), "%s",
		d->designName ? d->designName : "");
	memcpy(info->designDigest, d->designDigest, PROTO_DIGEST);
	memcpy(info->fabricDigest, d->fabricDigest, PROTO_DIGEST);
	info->nEnvm = d->envm.n;
    }
    memcpy(info->contentDigest, d->contentDigest, PROTO_DIGEST);
    info->nKeys = d->keys.n;
    for (i = 0; i < d->keys.n; i++) {
	n += (size_t) snprintf(info->keyNames + n, sizeof(info->keyNames) - n,
		"%s%s", i ? " " : "", d->keys.v[i].name);
	if (n >= sizeof(info->keyNames)) {
	    break;
	}
    }
    info->actions = d->actions;
    info->cocs = d->cocs;
    info->interrupted = d->interrupted;
}

/* The programmer carrying a device, or "" (from the bench state). */
static void
CarrierOf(SimBench *bench, const uint8_t dsn[PROTO_DSN], char *prg)
{
    SimProgrammer *list = NULL;
    SimError e;
    size_t n = 0, i;

    prg[0] = '\0';
    if (sim_programmer_list(bench, &list, &n, &e) != 0) {
	return;
    }
    for (i = 0; i < n; i++) {
	if (list[i].hasBoard && memcmp(list[i].dsn, dsn, PROTO_DSN) == 0) {
	    snprintf(prg, SIM_NAME_MAX + 1, "%s", list[i].name);
	    break;
	}
    }
    free(list);
}

/*
 * sim_device_info --
 *	A device as the bench knows it.
 */
int
sim_device_info(SimBench *bench, const uint8_t dsn[PROTO_DSN],
	SimDeviceInfo *info, SimError *err)
{
    char prg[SIM_NAME_MAX + 1], hex[2 * PROTO_DSN + 1];
    Device d;
    int rc;

    if ((rc = DeviceRead(bench, dsn, &d, err)) <= 0) {
	if (rc == 0) {
	    sim_dsn_format(dsn, hex);
	    DevFail(err, SIM_NO_DEVICE, "the bench has no device of DSN %s", hex);
	}
	return -1;
    }
    CarrierOf(bench, dsn, prg);
    FillInfo(&d, prg, info);
    DeviceFree(&d);
    return 0;
}

/*
 * sim_device_list --
 *	Every device of the bench, sorted by DSN.
 */
int
sim_device_list(SimBench *bench, SimDeviceInfo **list, size_t *n, SimError *err)
{
    char **names = NULL;
    size_t count = 0, i;
    hsm_err_t code;
    ProtoError pe;

    *list = NULL;
    *n = 0;
    if ((code = hsm_fw_blob_list(sim_bench_hsm(bench)->session, "dev.", &names))
	    != HSM_NO_ERROR) {
	role_hsm_error(&pe, "bench devices", code);
	return DevFail(err, SIM_FAIL, "%s", pe.msg);
    }
    while (names[count] != NULL) {
	count++;
    }
    if (count > 0 && (*list = calloc(count, sizeof(**list))) == NULL) {
	plat_free_list(names);
	return DevFail(err, SIM_FAIL, "no memory");
    }
    for (i = 0; i < count; i++) {
	uint8_t dsn[PROTO_DSN];

	if (strlen(names[i]) != 4 + 2 * PROTO_DSN
		|| sim_dsn_parse(names[i] + 4, dsn) != 0) {
	    continue;
	}
	if (sim_device_info(bench, dsn, &(*list)[*n], err) != 0) {
	    plat_free_list(names);
	    free(*list);
	    *list = NULL;
	    *n = 0;
	    return -1;
	}
	(*n)++;
    }
    plat_free_list(names);
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * Sessions: the device's side of an action.
 *
 *----------------------------------------------------------------------
 */

/* The session's board must still be on its programmer. */
static int
StillThere(SimSession *s, SimError *err)
{
    uint8_t dsn[PROTO_DSN];
    int rc;

    if ((rc = sim_bench_board(s->bench, s->prg, dsn, err)) < 0) {
	return -1;
    }
    if (rc == 0 || memcmp(dsn, s->dsn, PROTO_DSN) != 0) {
	return DevFail(err, SIM_PULLED, "the board of programmer '%s' was "
		"pulled: the device does not answer", s->prg);
    }
    return 0;
}

/* A fault at this step: pulls the board and fails. */
static int
FaultPoint(SimSession *s, SimStep step, SimError *err)
{
    int rc = sim_fault_point(s->bench, s->prg, step, err);

    if (rc < 0) {
	return -1;
    }
    if (rc == 1) {
	return DevFail(err, SIM_PULLED, "the board of programmer '%s' was "
		"pulled (fault at step '%s')", s->prg, sim_step_name(step));
    }
    return 0;
}

/*
 * sim_session_open --
 *	Powers up the device of a programmer's board.
 */
int
sim_session_open(SimBench *bench, const char *prg, SimSession **out,
	SimDeviceInfo *info, SimError *err)
{
    SimSession *s;
    Device d;
    int rc;

    *out = NULL;
    if ((s = calloc(1, sizeof(*s))) == NULL) {
	return DevFail(err, SIM_FAIL, "no memory");
    }
    s->bench = bench;
    snprintf(s->prg, sizeof(s->prg), "%s", prg);
    if ((rc = sim_bench_board(bench, prg, s->dsn, err)) <= 0) {
	free(s);
	return rc < 0 ? -1 : DevFail(err, SIM_NO_BOARD, "no device found on "
		"the chain of programmer '%s' (no board)", prg);
    }
    if ((rc = DeviceRead(bench, s->dsn, &d, err)) <= 0) {
	free(s);
	return rc < 0 ? -1 : DevFail(err, SIM_NO_DEVICE, "the device on "
		"programmer '%s' is unknown to the bench", prg);
    }
    if (info != NULL) {
	FillInfo(&d, prg, info);
    }
    DeviceFree(&d);
    *out = s;
    return 0;
}

/*
 * sim_session_close --
 *	Ends a session: its ephemeral key is freed.
 */
void
sim_session_close(SimSession *s)
{
    if (s != NULL) {
	EVP_PKEY_free(s->d);
	OPENSSL_cleanse(s, sizeof(*s));
	free(s);
    }
}

/*
 * sim_session_authenticate --
 *	The device's answer to a challenge: signed by KFP with a fresh
 *	session key D, or MACed with its FK.
 */
int
sim_session_authenticate(SimSession *s, const uint8_t challenge[PROTO_NONCE],
	uint8_t **answer, size_t *len, SimError *err)
{
    ProtoDevAuth a;
    ProtoError pe;
    ProtoBuf tbs, out;
    EVP_PKEY *kfp = NULL;
    Device d;
    int rc = -1;

    *answer = NULL;
    *len = 0;
    if (FaultPoint(s, SIM_STEP_AUTH, err) != 0 || StillThere(s, err) != 0) {
	return -1;
    }
    if (DeviceRead(s->bench, s->dsn, &d, err) != 1) {
	return DevFail(err, SIM_FAIL, "the record of the device on programmer "
		"'%s' is gone", s->prg);
    }
    memset(&a, 0, sizeof(a));
    proto_buf_init(&tbs);
    proto_buf_init(&out);
    memcpy(a.dsn, d.dsn, PROTO_DSN);
    snprintf(a.die, sizeof(a.die), "%s", d.die);
    memcpy(a.challenge, challenge, PROTO_NONCE);
    EVP_PKEY_free(s->d);
    s->d = NULL;
    if (d.hasKfp) {
	a.hasKfp = 1;
	a.cert = d.cert;
	if (proto_p384_generate(&s->d, a.ephemeral, &pe) != 0
		|| proto_p384_from_private(d.kfp, &kfp, &pe) != 0
		|| proto_dev_auth_tbs(challenge, d.dsn, a.ephemeral, &tbs) != 0
		|| proto_p384_sign(kfp, tbs.data, tbs.len, a.sig, &pe) != 0) {
	    DevFail(err, SIM_FAIL, "device: %s", pe.msg);
	    goto done;
	}
    } else if (proto_dev_auth_mac(d.fk, challenge, d.dsn, a.mac, &pe) != 0) {
	DevFail(err, SIM_FAIL, "device: %s", pe.msg);
	goto done;
    }
    if (proto_dev_auth_encode(&a, &out) != 0) {
	DevFail(err, SIM_FAIL, "no memory");
	goto done;
    }
    *answer = out.data;
    *len = out.len;
    out.data = NULL;
    memcpy(s->challenge, challenge, PROTO_NONCE);
    s->challenged = 1;
    rc = 0;
  done:
    EVP_PKEY_free(kfp);
    proto_buf_free(&tbs);
    proto_buf_free(&out);
    DeviceFree(&d);
    return rc;
}

/*
 * Install --
 *	What the device would hold after PROGRAM of body with the per-device
 *	keys of the code: fills d's design, settings and keys.
 */
static int
Install(Device *d, const ProtoBitstream *bs, const ProtoBitstreamBody *body,
	const ProtoAuthCode *code, SimError *err)
{
    size_t i, j;

    DeviceClearDesign(d);
    ListFree(&d->security);
    ListFree(&d->keys);
    d->programmed = 1;
    if ((d->designName = Dup(bs->designName ? bs->designName : "")) == NULL
	    || proto_sha384(body->fabric, body->fabricLen, d->fabricDigest) != 0) {
	return DevFail(err, SIM_FAIL, "no memory");
    }
    memcpy(d->designDigest, bs->designDigest, PROTO_DIGEST);
    for (i = 0; i < body->nEnvm; i++) {
	if (ListAddDigest(&d->envm, body->envm[i].name, body->envm[i].data,
		body->envm[i].len) != 0) {
	    return DevFail(err, SIM_FAIL, "no memory");
	}
    }
    for (i = 0; i < body->nSnvm; i++) {
	if (ListAddDigest(&d->snvm, body->snvm[i].name, body->snvm[i].data,
		body->snvm[i].len) != 0) {
	    return DevFail(err, SIM_FAIL, "no memory");
	}
    }
    for (i = 0; i < body->nSecurity; i++) {
	if (ListAdd(&d->security, body->security[i].name,
		body->security[i].data, body->security[i].len) != 0) {
	    return DevFail(err, SIM_FAIL, "no memory");
	}
    }
    for (i = 0; i < body->nKeys; i++) {
	if (ListAdd(&d->keys, body->keys[i].name, body->keys[i].data,
		body->keys[i].len) != 0) {
	    return DevFail(err, SIM_FAIL, "no memory");
	}
    }
    /* Per-device keys: exactly those the bitstream names, from the code. */
    for (i = 0; i < body->nPerDevice; i++) {
	for (j = 0; j < code->nKeys; j++) {
	    if (strcmp(code->keys[j].name, body->perDevice[i]) == 0) {
		break;
	    }
	}
	if (j == code->nKeys) {
	    return DevFail(err, SIM_REFUSED, "the authorization code lacks the "
		    "per-device key %s the bitstream needs", body->perDevice[i]);
	}
	if (ListAdd(&d->keys, code->keys[j].name, code->keys[j].data,
		code->keys[j].len) != 0) {
	    return DevFail(err, SIM_FAIL, "no memory");
	}
    }
    if (code->nKeys != body->nPerDevice) {
	return DevFail(err, SIM_REFUSED, "the authorization code carries "
		"per-device keys the bitstream does not name");
    }
    return ContentDigest(d, d->contentDigest) == 0 ? 0
	    : DevFail(err, SIM_FAIL, "no memory");
}

/*
 * sim_session_run --
 *	The device's side of an action (sim.h): the code opened with its
 *	own keys, the bitstream decrypted and checked, the action, the
 *	CoC.
 */
int
sim_session_run(SimSession *s, const char *action, const uint8_t *codeImage,
	size_t codeLen, const ProtoBitstream *bs, uint8_t **cocOut,
	size_t *cocLen, SimResult *result, SimError *err)
{
    ProtoCodeKeys keys;
    ProtoAuthCode code;
    ProtoKeyMode mode;
    ProtoBitstreamBody body;
    ProtoError pe;
    ProtoCoc coc;
    ProtoBuf out;
    EVP_PKEY *kfp = NULL;
    Device d, want;
    uint8_t *plain = NULL, digest[PROTO_DIGEST];
    size_t plainLen = 0;
    char die[32];
    int rc = -1, haveCode = 0, haveBody = 0, haveDevice = 0;

    *cocOut = NULL;
    *cocLen = 0;
    memset(&body, 0, sizeof(body));
    memset(&want, 0, sizeof(want));
    memset(&coc, 0, sizeof(coc));
    proto_buf_init(&out);
    if (result != NULL) {
	memset(result, 0, sizeof(*result));
    }
    if (!s->challenged) {
	return DevFail(err, SIM_REFUSED, "the device was not challenged in "
		"this session");
    }
    s->challenged = 0;			/* one code per session */
    if (FaultPoint(s, SIM_STEP_CODE, err) != 0 || StillThere(s, err) != 0) {
	goto done;
    }
    if (DeviceRead(s->bench, s->dsn, &d, err) != 1) {
	DevFail(err, SIM_FAIL, "the device record is gone");
	goto done;
    }
    haveDevice = 1;

    /* Open the code with the device's own keys. */
    memset(&keys, 0, sizeof(keys));
    memcpy(keys.dsn, d.dsn, PROTO_DSN);
    memcpy(keys.challenge, s->challenge, PROTO_NONCE);
    keys.fk = d.fk;
    if (d.hasKfp && proto_p384_from_private(d.kfp, &kfp, &pe) != 0) {
	DevFail(err, SIM_FAIL, "device: %s", pe.msg);
	goto done;
    }
    keys.kfp = kfp;
    keys.d = s->d;
    if (proto_authcode_open(&keys, codeImage, codeLen, &code, &mode, &pe) != 0) {
	DevFail(err, SIM_REFUSED, "the device refused the authorization code: "
		"%s", pe.msg);
	goto done;
    }
    haveCode = 1;
    if (result != NULL) {
	result->mode = mode;
    }
    if (strcmp(code.action, action) != 0) {
	DevFail(err, SIM_REFUSED, "the device refused the authorization code: "
		"it authorizes %s, not %s", code.action, action);
	goto done;
    }
    if (bs == NULL || memcmp(code.designDigest, bs->designDigest,
	    PROTO_DIGEST) != 0) {
	DevFail(err, SIM_REFUSED, "the device refused the bitstream: it is not "
		"the one the authorization code is for");
	goto done;
    }
    if (sim_die_canon(bs->die, die) != 0 || strcmp(die, d.die) != 0) {
	DevFail(err, SIM_REFUSED, "the device refused the bitstream: it is for "
		"die %s, the device has die %s", bs->die, d.die);
	goto done;
    }

    /* The bitstream: decrypt with KIP and check its digest. */
    if (strcmp(action, "ERASE") != 0) {
	if (proto_gcm_decrypt(code.kip, NULL, 0, bs->cipher, bs->cipherLen,
		&plain, &plainLen, &pe) != 0
		|| proto_sha384(plain, plainLen, digest) != 0
		|| memcmp(digest, bs->designDigest, PROTO_DIGEST) != 0) {
	    DevFail(err, SIM_REFUSED, "the device refused the bitstream: it does "
		    "not decrypt under the authorized key, or its digest is "
		    "wrong");
	    goto done;
	}
	if (proto_bitstream_body_decode(plain, plainLen, &body, &pe) != 0) {
	    DevFail(err, SIM_REFUSED, "the device refused the bitstream: %s",
		    pe.msg);
	    goto done;
	}
	haveBody = 1;
	/* What the device would hold after PROGRAM, for both actions. */
	memcpy(want.dsn, d.dsn, PROTO_DSN);
	if (Install(&want, bs, &body, &code, err) != 0) {
	    goto done;
	}
    }

    /* The action. */
    if (FaultPoint(s, SIM_STEP_PROGRAM, err) != 0) {
	if (strcmp(action, "PROGRAM") == 0) {
	    DeviceClearDesign(&d);
	    d.interrupted = 1;
	    d.actions++;
	    ContentDigest(&d, d.contentDigest);
	    DeviceWrite(s->bench, &d, NULL);
	}
	goto done;
    }
    d.actions++;
    if (strcmp(action, "PROGRAM") == 0) {
	if (result != NULL) {
	    result->erasedFirst = d.programmed;
	    result->nEnvm = want.envm.n;
	    result->nKeys = want.keys.n;
	}
	DeviceClearDesign(&d);
	ListFree(&d.security);
	ListFree(&d.keys);
	d.programmed = 1;
	d.designName = want.designName;
	want.designName = NULL;
	memcpy(d.designDigest, want.designDigest, PROTO_DIGEST);
	memcpy(d.fabricDigest, want.fabricDigest, PROTO_DIGEST);
	memcpy(d.contentDigest, want.contentDigest, PROTO_DIGEST);
	d.envm = want.envm;
	d.snvm = want.snvm;
	d.security = want.security;
	d.keys = want.keys;
	memset(&want.envm, 0, sizeof(want.envm));
	memset(&want.snvm, 0, sizeof(want.snvm));
	memset(&want.security, 0, sizeof(want.security));
	memset(&want.keys, 0, sizeof(want.keys));
	d.interrupted = 0;
    } else if (strcmp(action, "VERIFY") == 0) {
	if (result != NULL) {
	    result->nEnvm = want.envm.n;
	}
	if (CRYPTO_memcmp(want.contentDigest, d.contentDigest,
		PROTO_DIGEST) != 0) {
	    DeviceWrite(s->bench, &d, NULL);
	    DevFail(err, SIM_VERIFY, "the device does not hold what the "
		    "bitstream programs (%s)", d.programmed
		    ? "another design or other keys" : "it is blank");
	    goto done;
	}
    } else {
	DeviceClearDesign(&d);
	if (HasFeature(bs->features, "SECURITY")) {
	    /* The bitstream set the security: its ERASE clears it too. */
	    ListFree(&d.security);
	    ListFree(&d.keys);
	}
	d.interrupted = 0;
	if (ContentDigest(&d, d.contentDigest) != 0) {
	    DevFail(err, SIM_FAIL, "no memory");
	    goto done;
	}
    }

    /* The CoC, MACed under the bitstream key. */
    memcpy(coc.dsn, d.dsn, PROTO_DSN);
    memcpy(coc.ticketId, code.ticketId, PROTO_TICKET_ID);
    coc.action = code.action;
    memcpy(coc.designDigest, code.designDigest, PROTO_DIGEST);
    memcpy(coc.contentDigest, d.contentDigest, PROTO_DIGEST);
    memcpy(coc.codeId, code.codeId, PROTO_CODE_ID);
    coc.deviceCounter = d.actions;
    if (proto_coc_mac(code.kip, &coc, coc.mac, &pe) != 0
	    || proto_coc_encode(&coc, &out) != 0) {
	DevFail(err, SIM_FAIL, "device: cannot make its CoC");
	goto done;
    }
    d.cocs++;
    if (DeviceWrite(s->bench, &d, err) != 0) {
	goto done;
    }
    if (FaultPoint(s, SIM_STEP_COC, err) != 0) {
	goto done;
    }
    *cocOut = out.data;
    *cocLen = out.len;
    out.data = NULL;
    rc = 0;
  done:
    coc.action = NULL;
    proto_buf_free(&out);
    if (plain != NULL) {
	OPENSSL_cleanse(plain, plainLen);
	free(plain);
    }
    if (haveBody) {
	proto_bitstream_body_free(&body);
    }
    if (haveCode) {
	proto_authcode_free(&code);
    }
    if (haveDevice) {
	DeviceFree(&d);
    }
    DeviceFree(&want);
    EVP_PKEY_free(kfp);
    EVP_PKEY_free(s->d);
    s->d = NULL;
    return rc;
}

/*
 * sim_session_check --
 *	The actions that need no code: DEVICE_INFO, READ_IDCODE,
 *	VERIFY_DIGEST.
 */
int
sim_session_check(SimSession *s, const char *action, SimDeviceInfo *info,
	SimError *err)
{
    uint8_t digest[PROTO_DIGEST];
    Device d;
    int rc = 0;

    if (StillThere(s, err) != 0) {
	return -1;
    }
    if (DeviceRead(s->bench, s->dsn, &d, err) != 1) {
	return DevFail(err, SIM_FAIL, "the device record is gone");
    }
    if (strcmp(action, "VERIFY_DIGEST") == 0) {
	if (ContentDigest(&d, digest) != 0) {
	    rc = DevFail(err, SIM_FAIL, "no memory");
	} else if (CRYPTO_memcmp(digest, d.contentDigest, PROTO_DIGEST) != 0) {
	    rc = DevFail(err, SIM_VERIFY, "the digests the device computes do "
		    "not match those stored at programming");
	}
    }
    if (info != NULL) {
	FillInfo(&d, s->prg, info);
    }
    DeviceFree(&d);
    return rc;
}
