/*
 * hsm_device.c --
 *
 *	Devices: one HSM per state directory, opened once per process and
 *	shared by its sessions.  Here are the device's stand-ins for silicon
 *	(the fuse file with the device secret, the otp file with the
 *	monotonic counter), its NVM (the manifest and the object files), the
 *	NVM commit protocol of docs/ARCHITECTURE.md, the locks that serialise
 *	threads and processes, and the device's random generator.
 *
 *	docs/FORMATS.md, "HSM state directory", has the bytes of every file.
 */

#include "hsm_core.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#define FUSE_MAGIC	"SPFU"
#define OTP_MAGIC	"SPOT"
#define OBJ_MAGIC	"SPNV"
#define FORMAT_VERSION	1

#define SECRET_LEN	32
#define CHIPID_LEN	8
#define GCM_IV		12
#define GCM_TAG		16
#define HMAC_LEN	48

#define FUSE_HDR	32
#define FUSE_PLAIN	(SECRET_LEN + CHIPID_LEN)
#define FUSE_LEN	(FUSE_HDR + GCM_IV + FUSE_PLAIN + GCM_TAG)
#define OTP_BODY	24
#define OTP_LEN		(OTP_BODY + HMAC_LEN)
#define OBJ_HDR		24

/* Largest files we agree to read. */
#define MANIFEST_MAX	((size_t) 64 << 20)
#define OBJECT_MAX	((size_t) 2 << 20)

/* scrypt parameters of a new sealed fuse, and the bounds accepted on
 * reading one (a hostile file must not make us allocate without bound). */
#define SCRYPT_LOG2N	15
#define SCRYPT_R	8
#define SCRYPT_P	1
#define SCRYPT_MAXMEM	((uint64_t) 256 << 20)

/* The label the unsealed fuse's integrity key is derived from: public. */
#define FUSE_LABEL_IKM	"spps fuse integrity: not a secret"

static HsmDevice *devices;		/* registry (global mutex) */
static PlatMutex registryMutex = PLAT_MUTEX_INITIALIZER;

/* The devices this thread has locked, with their recursion depth. */
#define MAX_HELD 8
static HSM_THREAD_LOCAL HsmDevice *heldDevice[MAX_HELD];
static HSM_THREAD_LOCAL int heldDepth[MAX_HELD];

static hsm_err_t Refresh(HsmDevice *dev);

/* ------------------------------------------------------------------ */
/* Byte buffers                                                         */
/* ------------------------------------------------------------------ */

void
hsm_buf_init(HsmBuf *b, int secret)
{
    memset(b, 0, sizeof(*b));
    b->secret = secret;
}

void
hsm_buf_free(HsmBuf *b)
{
    if (b->data != NULL) {
	if (b->secret) {
	    OPENSSL_clear_free(b->data, b->room);
	} else {
	    free(b->data);
	}
    }
    b->data = NULL;
    b->len = b->room = 0;
}

void
hsm_buf_bytes(HsmBuf *b, const void *p, size_t n)
{
    if (b->failed) {
	return;
    }
    if (b->len + n > b->room) {
	size_t room = b->room ? b->room : 256;
	uint8_t *data;

	while (room < b->len + n) {
	    room *= 2;
	}
	if (b->secret) {
	    data = OPENSSL_malloc(room);
	    if (data != NULL && b->data != NULL) {
		memcpy(data, b->data, b->len);
		OPENSSL_clear_free(b->data, b->room);
	    } else if (data == NULL) {
		OPENSSL_clear_free(b->data, b->room);
	    }
	} else {
	    data = realloc(b->data, room);
	    if (data == NULL) {
		free(b->data);
	    }
	}
	if (data == NULL) {
	    b->data = NULL;
	    b->len = b->room = 0;
	    b->failed = 1;
	    return;
	}
	b->data = data;
	b->room = room;
    }
    if (n > 0) {
	memcpy(b->data + b->len, p, n);
    }
    b->len += n;
}

void
hsm_buf_u8(HsmBuf *b, uint8_t v)
{
    hsm_buf_bytes(b, &v, 1);
}

void
hsm_buf_u16(HsmBuf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t) v, (uint8_t) (v >> 8)};

    hsm_buf_bytes(b, x, 2);
}

void
hsm_buf_u32(HsmBuf *b, uint32_t v)
{
    uint8_t x[4];
    int i;

    for (i = 0; i < 4; i++) {
	x[i] = (uint8_t) (v >> (8 * i));
    }
    hsm_buf_bytes(b, x, 4);
}

void
hsm_buf_u64(HsmBuf *b, uint64_t v)
{
    uint8_t x[8];
    int i;

    for (i = 0; i < 8; i++) {
	x[i] = (uint8_t) (v >> (8 * i));
    }
    hsm_buf_bytes(b, x, 8);
}

void
hsm_rd_init(HsmReader *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->left = len;
    r->bad = 0;
}

const uint8_t *
hsm_rd_bytes(HsmReader *r, size_t n)
{
    const uint8_t *p;

    if (r->bad || n > r->left) {
	r->bad = 1;
	return NULL;
    }
    p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static uint64_t
ReadLe(HsmReader *r, int n)
{
    const uint8_t *p = hsm_rd_bytes(r, (size_t) n);
    uint64_t v = 0;
    int i;

    if (p == NULL) {
	return 0;
    }
    for (i = n - 1; i >= 0; i--) {
	v = (v << 8) | p[i];
    }
    return v;
}

uint8_t hsm_rd_u8(HsmReader *r) { return (uint8_t) ReadLe(r, 1); }
uint16_t hsm_rd_u16(HsmReader *r) { return (uint16_t) ReadLe(r, 2); }
uint32_t hsm_rd_u32(HsmReader *r) { return (uint32_t) ReadLe(r, 4); }
uint64_t hsm_rd_u64(HsmReader *r) { return ReadLe(r, 8); }

static void
PutLe(uint8_t *p, uint64_t v, int n)
{
    int i;

    for (i = 0; i < n; i++) {
	p[i] = (uint8_t) (v >> (8 * i));
    }
}

/* ------------------------------------------------------------------ */
/* The manifest                                                         */
/* ------------------------------------------------------------------ */

static void
FreeStore(HsmManStore *s)
{
    size_t i;

    for (i = 0; i < s->nGroups; i++) {
	free(s->groups[i].keyIds);
    }
    free(s->groups);
    free(s->data);
}

void
hsm_manifest_free(HsmManifest *m)
{
    size_t i;

    if (m == NULL) {
	return;
    }
    for (i = 0; i < m->nStores; i++) {
	FreeStore(&m->stores[i]);
    }
    free(m->stores);
    free(m->blobs);
    free(m);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_manifest_copy --
 *	A deep copy (to be modified and committed), NULL without memory.
 *
 *----------------------------------------------------------------------
 */

HsmManifest *
hsm_manifest_copy(const HsmManifest *m)
{
    HsmManifest *c = calloc(1, sizeof(*c));
    size_t i, j;

    if (c == NULL) {
	return NULL;
    }
    *c = *m;
    c->stores = NULL;
    c->blobs = NULL;
    c->nStores = c->nBlobs = 0;
    if (m->nStores > 0) {
	if ((c->stores = calloc(m->nStores, sizeof(HsmManStore))) == NULL) {
	    goto nomem;
	}
	for (i = 0; i < m->nStores; i++) {
	    const HsmManStore *s = &m->stores[i];
	    HsmManStore *d = &c->stores[i];

	    c->nStores++;
	    *d = *s;
	    d->groups = NULL;
	    d->data = NULL;
	    d->nGroups = d->nData = 0;
	    if (s->nGroups > 0) {
		if ((d->groups = calloc(s->nGroups, sizeof(HsmManGroup)))
			== NULL) {
		    goto nomem;
		}
		for (j = 0; j < s->nGroups; j++) {
		    d->groups[j] = s->groups[j];
		    d->groups[j].keyIds = NULL;
		    d->nGroups++;
		    if (s->groups[j].nKeys > 0) {
			size_t n = s->groups[j].nKeys * sizeof(uint32_t);

			if ((d->groups[j].keyIds = malloc(n)) == NULL) {
			    goto nomem;
			}
			memcpy(d->groups[j].keyIds, s->groups[j].keyIds, n);
		    }
		}
	    }
	    if (s->nData > 0) {
		if ((d->data = malloc(s->nData * sizeof(HsmManData)))
			== NULL) {
		    goto nomem;
		}
		memcpy(d->data, s->data, s->nData * sizeof(HsmManData));
		d->nData = s->nData;
	    }
	}
    }
    if (m->nBlobs > 0) {
	if ((c->blobs = malloc(m->nBlobs * sizeof(HsmManBlob))) == NULL) {
	    goto nomem;
	}
	memcpy(c->blobs, m->blobs, m->nBlobs * sizeof(HsmManBlob));
	c->nBlobs = m->nBlobs;
    }
    return c;

  nomem:
    hsm_manifest_free(c);
    return NULL;
}

HsmManStore *
hsm_manifest_store(const HsmManifest *m, uint32_t id)
{
    size_t i;

    for (i = 0; i < m->nStores; i++) {
	if (m->stores[i].id == id) {
	    return &m->stores[i];
	}
    }
    return NULL;
}

HsmManStore *
hsm_manifest_add_store(HsmManifest *m, uint32_t id)
{
    HsmManStore *s = realloc(m->stores, (m->nStores + 1) * sizeof(*s));

    if (s == NULL) {
	return NULL;
    }
    m->stores = s;
    s = &m->stores[m->nStores++];
    memset(s, 0, sizeof(*s));
    s->id = id;
    return s;
}

HsmManGroup *
hsm_manifest_group(const HsmManStore *s, uint16_t number)
{
    size_t i;

    for (i = 0; i < s->nGroups; i++) {
	if (s->groups[i].number == number) {
	    return &s->groups[i];
	}
    }
    return NULL;
}

int
hsm_manifest_set_group(HsmManStore *s, uint16_t number, const uint32_t *ids,
	uint32_t nKeys)
{
    HsmManGroup *g = hsm_manifest_group(s, number);
    uint32_t *copy = NULL;

    if (nKeys == 0) {
	if (g != NULL) {
	    free(g->keyIds);
	    *g = s->groups[--s->nGroups];
	}
	return 0;
    }
    if ((copy = malloc(nKeys * sizeof(uint32_t))) == NULL) {
	return -1;
    }
    memcpy(copy, ids, nKeys * sizeof(uint32_t));
    if (g == NULL) {
	HsmManGroup *groups = realloc(s->groups,
		(s->nGroups + 1) * sizeof(HsmManGroup));

	if (groups == NULL) {
	    free(copy);
	    return -1;
	}
	s->groups = groups;
	g = &s->groups[s->nGroups++];
	memset(g, 0, sizeof(*g));
	g->number = number;
    }
    free(g->keyIds);
    g->keyIds = copy;
    g->nKeys = nKeys;
    return 0;
}

int
hsm_manifest_key_group(const HsmManStore *s, uint32_t keyId)
{
    size_t i, j;

    for (i = 0; i < s->nGroups; i++) {
	for (j = 0; j < s->groups[i].nKeys; j++) {
	    if (s->groups[i].keyIds[j] == keyId) {
		return s->groups[i].number;
	    }
	}
    }
    return -1;
}

HsmManData *
hsm_manifest_data(const HsmManStore *s, uint16_t id)
{
    size_t i;

    for (i = 0; i < s->nData; i++) {
	if (s->data[i].id == id) {
	    return &s->data[i];
	}
    }
    return NULL;
}

int
hsm_manifest_set_data(HsmManStore *s, uint16_t id, uint32_t size)
{
    HsmManData *d = hsm_manifest_data(s, id);

    if (d == NULL) {
	HsmManData *data = realloc(s->data, (s->nData + 1) * sizeof(*data));

	if (data == NULL) {
	    return -1;
	}
	s->data = data;
	d = &s->data[s->nData++];
	memset(d, 0, sizeof(*d));
	d->id = id;
    }
    d->size = size;
    return 0;
}

HsmManBlob *
hsm_manifest_blob(const HsmManifest *m, const char *name)
{
    size_t i;

    for (i = 0; i < m->nBlobs; i++) {
	if (strcmp(m->blobs[i].name, name) == 0) {
	    return &m->blobs[i];
	}
    }
    return NULL;
}

int
hsm_manifest_set_blob(HsmManifest *m, const char *name, uint32_t size)
{
    HsmManBlob *b = hsm_manifest_blob(m, name);

    if (strlen(name) > HSM_BLOB_NAME_MAX) {
	return -1;
    }
    if (b == NULL) {
	HsmManBlob *blobs = realloc(m->blobs, (m->nBlobs + 1) * sizeof(*b));

	if (blobs == NULL) {
	    return -1;
	}
	m->blobs = blobs;
	b = &m->blobs[m->nBlobs++];
	memset(b, 0, sizeof(*b));
	strcpy(b->name, name);
    }
    b->size = size;
    return 0;
}

void
hsm_manifest_remove_blob(HsmManifest *m, const char *name)
{
    HsmManBlob *b = hsm_manifest_blob(m, name);

    if (b != NULL) {
	*b = m->blobs[--m->nBlobs];
    }
}

/*
 *----------------------------------------------------------------------
 *
 * SerializeManifest, ParseManifest --
 *	The manifest's plaintext (docs/FORMATS.md).  Parsing checks every
 *	count against the bytes left before allocating anything.
 *
 *----------------------------------------------------------------------
 */

static void
SerializeManifest(const HsmManifest *m, HsmBuf *b)
{
    size_t i, j, k;

    hsm_buf_u64(b, m->generation);
    hsm_buf_u64(b, m->writtenAt);
    hsm_buf_u16(b, m->lifecycle);
    hsm_buf_u8(b, (uint8_t) (m->hasOwner ? 1 : 0));
    if (m->hasOwner) {
	hsm_buf_bytes(b, m->owner, sizeof(m->owner));
    }
    hsm_buf_u32(b, (uint32_t) m->nStores);
    for (i = 0; i < m->nStores; i++) {
	const HsmManStore *s = &m->stores[i];

	hsm_buf_u32(b, s->id);
	hsm_buf_u32(b, s->nonce);
	hsm_buf_u16(b, s->maxUpdates);
	hsm_buf_u32(b, s->updatesUsed);
	hsm_buf_u32(b, (uint32_t) s->nGroups);
	for (j = 0; j < s->nGroups; j++) {
	    const HsmManGroup *g = &s->groups[j];

	    hsm_buf_u16(b, g->number);
	    hsm_buf_u64(b, g->version);
	    hsm_buf_u32(b, g->nKeys);
	    for (k = 0; k < g->nKeys; k++) {
		hsm_buf_u32(b, g->keyIds[k]);
	    }
	}
	hsm_buf_u32(b, (uint32_t) s->nData);
	for (j = 0; j < s->nData; j++) {
	    hsm_buf_u16(b, s->data[j].id);
	    hsm_buf_u64(b, s->data[j].version);
	    hsm_buf_u32(b, s->data[j].size);
	}
    }
    hsm_buf_u32(b, (uint32_t) m->nBlobs);
    for (i = 0; i < m->nBlobs; i++) {
	size_t n = strlen(m->blobs[i].name);

	hsm_buf_u8(b, (uint8_t) n);
	hsm_buf_bytes(b, m->blobs[i].name, n);
	hsm_buf_u64(b, m->blobs[i].version);
	hsm_buf_u32(b, m->blobs[i].size);
    }
}

/* Returns NULL with *why set if the plaintext is not a valid manifest. */
static HsmManifest *
ParseManifest(const uint8_t *p, size_t len, const char **why)
{
    HsmReader r;
    HsmManifest *m = calloc(1, sizeof(*m));
    uint32_t n, i, j, k;

    *why = "out of memory";
    if (m == NULL) {
	return NULL;
    }
    *why = "malformed content";
    hsm_rd_init(&r, p, len);
    m->generation = hsm_rd_u64(&r);
    m->writtenAt = hsm_rd_u64(&r);
    m->lifecycle = hsm_rd_u16(&r);
    m->hasOwner = hsm_rd_u8(&r);
    if (m->hasOwner > 1) {
	goto bad;
    }
    if (m->hasOwner) {
	const uint8_t *o = hsm_rd_bytes(&r, sizeof(m->owner));

	if (o == NULL) {
	    goto bad;
	}
	memcpy(m->owner, o, sizeof(m->owner));
    }
    n = hsm_rd_u32(&r);
    /* Each store takes at least 22 bytes. */
    if (r.bad || n > r.left / 22) {
	goto bad;
    }
    if (n > 0 && (m->stores = calloc(n, sizeof(HsmManStore))) == NULL) {
	goto nomem;
    }
    for (i = 0; i < n; i++) {
	HsmManStore *s = &m->stores[i];
	uint32_t ng, nd;

	m->nStores++;
	s->id = hsm_rd_u32(&r);
	s->nonce = hsm_rd_u32(&r);
	s->maxUpdates = hsm_rd_u16(&r);
	s->updatesUsed = hsm_rd_u32(&r);
	ng = hsm_rd_u32(&r);
	if (r.bad || ng > HSM_MAX_KEY_GROUP + 1 || ng > r.left / 14) {
	    goto bad;
	}
	if (ng > 0 && (s->groups = calloc(ng, sizeof(HsmManGroup))) == NULL) {
	    goto nomem;
	}
	for (j = 0; j < ng; j++) {
	    HsmManGroup *g = &s->groups[j];

	    s->nGroups++;
	    g->number = hsm_rd_u16(&r);
	    g->version = hsm_rd_u64(&r);
	    g->nKeys = hsm_rd_u32(&r);
	    if (r.bad || g->number > HSM_MAX_KEY_GROUP || g->nKeys == 0
		    || g->nKeys > r.left / 4
		    || hsm_manifest_group(s, g->number) != g) {
		goto bad;
	    }
	    if ((g->keyIds = malloc(g->nKeys * sizeof(uint32_t))) == NULL) {
		goto nomem;
	    }
	    for (k = 0; k < g->nKeys; k++) {
		g->keyIds[k] = hsm_rd_u32(&r);
	    }
	}
	nd = hsm_rd_u32(&r);
	if (r.bad || nd > r.left / 14) {
	    goto bad;
	}
	if (nd > 0 && (s->data = calloc(nd, sizeof(HsmManData))) == NULL) {
	    goto nomem;
	}
	for (j = 0; j < nd; j++) {
	    s->data[j].id = hsm_rd_u16(&r);
	    s->data[j].version = hsm_rd_u64(&r);
	    s->data[j].size = hsm_rd_u32(&r);
	    s->nData++;
	}
	if (hsm_manifest_store(m, s->id) != s) {
	    goto bad;
	}
    }
    n = hsm_rd_u32(&r);
    if (r.bad || n > r.left / 13) {
	goto bad;
    }
    if (n > 0 && (m->blobs = calloc(n, sizeof(HsmManBlob))) == NULL) {
	goto nomem;
    }
    for (i = 0; i < n; i++) {
	uint8_t nameLen = hsm_rd_u8(&r);
	const uint8_t *name = hsm_rd_bytes(&r, nameLen);

	if (name == NULL || nameLen == 0 || nameLen > HSM_BLOB_NAME_MAX) {
	    goto bad;
	}
	memcpy(m->blobs[i].name, name, nameLen);
	m->blobs[i].name[nameLen] = '\0';
	m->blobs[i].version = hsm_rd_u64(&r);
	m->blobs[i].size = hsm_rd_u32(&r);
	m->nBlobs++;
    }
    if (r.bad || r.left != 0) {
	goto bad;
    }
    return m;

  nomem:
    *why = "out of memory";
  bad:
    hsm_manifest_free(m);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Registry and reference counts                                        */
/* ------------------------------------------------------------------ */

void
hsm_device_ref_locked(HsmDevice *dev)
{
    dev->refs++;
}

int
hsm_device_unref_locked(HsmDevice *dev)
{
    HsmDevice **pp;

    if (--dev->refs > 0) {
	return 0;
    }
    for (pp = &devices; *pp != NULL; pp = &(*pp)->next) {
	if (*pp == dev) {
	    *pp = dev->next;
	    break;
	}
    }
    return 1;
}

void
hsm_device_release(HsmDevice *dev)
{
    int destroy;

    hsm_global_lock();
    destroy = hsm_device_unref_locked(dev);
    hsm_global_unlock();
    if (destroy) {
	hsm_device_destroy(dev);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_device_destroy --
 *	Frees an unreachable device: its key stores are gone already (their
 *	services closed with their sessions).
 *
 *----------------------------------------------------------------------
 */

void
hsm_device_destroy(HsmDevice *dev)
{
    if (dev == NULL) {
	return;
    }
    if (dev->fileLocked) {
	plat_unlock(&dev->fileLock);
    }
    hsm_secure_free(dev->secret, SECRET_LEN);
    hsm_secure_free(dev->nvmKey, 32);
    hsm_secure_free(dev->otpKey, 32);
    hsm_manifest_free(dev->manifest);
    EVP_RAND_CTX_free(dev->drbg);
    plat_mutex_destroy(&dev->mutex);
    free(dev->dir);
    free(dev);
}

/* ------------------------------------------------------------------ */
/* Locks                                                                */
/* ------------------------------------------------------------------ */

hsm_err_t
hsm_device_lock(HsmDevice *dev)
{
    int i, freeSlot = -1;

    for (i = 0; i < MAX_HELD; i++) {
	if (heldDevice[i] == dev) {
	    heldDepth[i]++;
	    return HSM_NO_ERROR;
	}
	if (heldDevice[i] == NULL && freeSlot < 0) {
	    freeSlot = i;
	}
    }
    if (freeSlot < 0) {
	return hsm_fail(HSM_GENERAL_ERROR, "this thread holds %d HSMs at "
		"once, the most allowed", MAX_HELD);
    }
    plat_mutex_lock(&dev->mutex);
    heldDevice[freeSlot] = dev;
    heldDepth[freeSlot] = 1;
    dev->opSerial++;
    return HSM_NO_ERROR;
}

void
hsm_device_unlock(HsmDevice *dev)
{
    int i;

    for (i = 0; i < MAX_HELD; i++) {
	if (heldDevice[i] == dev) {
	    if (--heldDepth[i] > 0) {
		return;
	    }
	    heldDevice[i] = NULL;
	    if (dev->fileLocked) {
		plat_unlock(&dev->fileLock);
		dev->fileLocked = 0;
	    }
	    plat_mutex_unlock(&dev->mutex);
	    return;
	}
    }
}

/*
 *----------------------------------------------------------------------
 *
 * LockFile --
 *	Takes the state directory's lock file (device lock held).
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
LockFile(HsmDevice *dev)
{
    PlatError perr;
    char *path;
    int rc;

    if (dev->fileLocked) {
	return HSM_NO_ERROR;
    }
    if ((path = plat_join(dev->dir, "lock")) == NULL) {
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory to lock %s", dev->dir);
    }
    rc = plat_lock_exclusive(path, &dev->fileLock, &perr);
    free(path);
    if (rc != 0) {
	return hsm_fail(HSM_NVM_ERROR, "%s", perr.msg);
    }
    dev->fileLocked = 1;
    return HSM_NO_ERROR;
}

hsm_err_t
hsm_device_nvm_begin(HsmDevice *dev)
{
    hsm_err_t err;

    if ((err = LockFile(dev)) != HSM_NO_ERROR) {
	return err;
    }
    return Refresh(dev);
}

/* ------------------------------------------------------------------ */
/* Random generator                                                     */
/* ------------------------------------------------------------------ */

/*
 *----------------------------------------------------------------------
 *
 * hsm_device_fault --
 *	1 if SPPS_FAULT holds the spec what among its comma-separated specs
 *	(read at every call, so a test can set it before opening a device).
 *
 *----------------------------------------------------------------------
 */

int
hsm_device_fault(const char *what)
{
    const char *spec = getenv("SPPS_FAULT");
    size_t n = strlen(what);

    while (spec != NULL && *spec != '\0') {
	const char *end = strchr(spec, ',');
	size_t len = end ? (size_t) (end - spec) : strlen(spec);

	if (len == n && strncmp(spec, what, n) == 0) {
	    return 1;
	}
	spec = end ? end + 1 : NULL;
    }
    return 0;
}

static void
StartDrbg(HsmDevice *dev)
{
    static const char pers[] = "spps hsm device drbg";
    EVP_RAND *rand;
    OSSL_PARAM params[2];

    if (hsm_device_fault("rng-fail")) {
	snprintf(dev->rngError, sizeof(dev->rngError),
		"SPPS_FAULT=rng-fail: the DRBG was not instantiated");
	return;
    }
    rand = EVP_RAND_fetch(NULL, "CTR-DRBG", NULL);
    if (rand == NULL || (dev->drbg = EVP_RAND_CTX_new(rand, NULL)) == NULL) {
	EVP_RAND_free(rand);
	snprintf(dev->rngError, sizeof(dev->rngError),
		"OpenSSL has no CTR-DRBG");
	ERR_clear_error();
	return;
    }
    EVP_RAND_free(rand);
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_DRBG_PARAM_CIPHER,
	    (char *) "AES-256-CTR", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (EVP_RAND_instantiate(dev->drbg, 256, 0, (const unsigned char *) pers,
	    sizeof(pers) - 1, params) != 1) {
	unsigned long e = ERR_peek_last_error();
	char reason[160];

	ERR_error_string_n(e, reason, sizeof(reason));
	snprintf(dev->rngError, sizeof(dev->rngError),
		"the CTR-DRBG could not be seeded from the operating system: "
		"%.100s", reason);
	ERR_clear_error();
	EVP_RAND_CTX_free(dev->drbg);
	dev->drbg = NULL;
	return;
    }
    dev->drbgForkGen = plat_fork_generation();
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_device_random --
 *	Random bytes from the device's DRBG (device lock held).  A forked
 *	child reseeds first, so it never repeats its parent's output.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_device_random(HsmDevice *dev, uint8_t *out, size_t len)
{
    if (dev->drbg == NULL) {
	return hsm_fail(HSM_RNG_NOT_STARTED, "the random generator of the "
		"HSM in %s is not started: %s", dev->dir, dev->rngError);
    }
    if (plat_fork_generation() != dev->drbgForkGen) {
	if (EVP_RAND_reseed(dev->drbg, 1, NULL, 0, NULL, 0) != 1) {
	    ERR_clear_error();
	    return hsm_fail(HSM_RNG_NOT_STARTED, "the random generator of "
		    "the HSM in %s cannot reseed after fork", dev->dir);
	}
	dev->drbgForkGen = plat_fork_generation();
    }
    while (len > 0) {
	size_t n = len > 4096 ? 4096 : len;

	if (EVP_RAND_generate(dev->drbg, out, n, 256, 0, NULL, 0) != 1) {
	    ERR_clear_error();
	    return hsm_fail(HSM_RNG_NOT_STARTED, "the random generator of "
		    "the HSM in %s failed to generate", dev->dir);
	}
	out += n;
	len -= n;
    }
    return HSM_NO_ERROR;
}

/* ------------------------------------------------------------------ */
/* Sealing: AES-256-GCM with a header as AAD                            */
/* ------------------------------------------------------------------ */

/* Encrypts plain into out (GCM_IV + len + GCM_TAG bytes). */
static hsm_err_t
GcmSeal(HsmDevice *dev, const uint8_t *key, const uint8_t *aad,
	size_t aadLen, const uint8_t *plain, size_t len, uint8_t *out)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    const EVP_CIPHER *gcm = hsm_aes(32, HSM_AES_GCM);
    hsm_err_t err;
    int n, ok;

    if (ctx == NULL || gcm == NULL) {
	EVP_CIPHER_CTX_free(ctx);
	return hsm_fail_ossl("sealing an NVM object");
    }
    if ((err = hsm_device_random(dev, out, GCM_IV)) != HSM_NO_ERROR) {
	EVP_CIPHER_CTX_free(ctx);
	return err;
    }
    ok = EVP_EncryptInit_ex2(ctx, gcm, key, out, NULL) == 1
	    && (aadLen == 0 || EVP_EncryptUpdate(ctx, NULL, &n, aad,
		    (int) aadLen) == 1)
	    && (len == 0 || EVP_EncryptUpdate(ctx, out + GCM_IV, &n, plain,
		    (int) len) == 1)
	    && EVP_EncryptFinal_ex(ctx, out + GCM_IV + len, &n) == 1
	    && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, GCM_TAG,
		    out + GCM_IV + len) == 1;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? HSM_NO_ERROR : hsm_fail_ossl("sealing an NVM object");
}

/* Decrypts in (GCM_IV + ct + GCM_TAG) into plain; -1 if not authentic. */
static int
GcmOpen(const uint8_t *key, const uint8_t *aad, size_t aadLen,
	const uint8_t *in, size_t inLen, uint8_t *plain)
{
    EVP_CIPHER_CTX *ctx;
    const EVP_CIPHER *gcm = hsm_aes(32, HSM_AES_GCM);
    size_t len;
    int n, ok;

    if (inLen < GCM_IV + GCM_TAG || gcm == NULL
	    || (ctx = EVP_CIPHER_CTX_new()) == NULL) {
	return -1;
    }
    len = inLen - GCM_IV - GCM_TAG;
    ok = EVP_DecryptInit_ex2(ctx, gcm, key, in, NULL) == 1
	    && (aadLen == 0 || EVP_DecryptUpdate(ctx, NULL, &n, aad,
		    (int) aadLen) == 1)
	    && (len == 0 || EVP_DecryptUpdate(ctx, plain, &n, in + GCM_IV,
		    (int) len) == 1)
	    && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, GCM_TAG,
		    (void *) (in + GCM_IV + len)) == 1
	    && EVP_DecryptFinal_ex(ctx, plain + len, &n) == 1;
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();
    if (!ok) {
	OPENSSL_cleanse(plain, len);
    }
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------ */
/* File names                                                           */
/* ------------------------------------------------------------------ */

void
hsm_device_object_path(char *out, size_t outLen, int kind, uint32_t storeId,
	uint32_t objId, const char *name, uint64_t version)
{
    switch (kind) {
    case HSM_OBJ_GROUP:
	snprintf(out, outLen, "ks-%08x/group-%04u.v%llu", (unsigned) storeId,
		(unsigned) objId, (unsigned long long) version);
	break;
    case HSM_OBJ_DATA:
	snprintf(out, outLen, "ks-%08x/data-%05u.v%llu", (unsigned) storeId,
		(unsigned) objId, (unsigned long long) version);
	break;
    case HSM_OBJ_BLOB:
	snprintf(out, outLen, "fw/%s.v%llu", name,
		(unsigned long long) version);
	break;
    default:
	snprintf(out, outLen, "manifest");
	break;
    }
}

static void
ObjectDir(char *out, size_t outLen, int kind, uint32_t storeId)
{
    if (kind == HSM_OBJ_BLOB) {
	snprintf(out, outLen, "fw");
    } else {
	snprintf(out, outLen, "ks-%08x", (unsigned) storeId);
    }
}

/* The header of an object file (its AAD); returns its length. */
static size_t
ObjectHeader(uint8_t *hdr, int kind, uint32_t storeId, uint32_t objId,
	const char *name, uint64_t version)
{
    size_t nameLen = name ? strlen(name) : 0;

    memcpy(hdr, OBJ_MAGIC, 4);
    PutLe(hdr + 4, FORMAT_VERSION, 2);
    hdr[6] = (uint8_t) kind;
    hdr[7] = (uint8_t) nameLen;
    PutLe(hdr + 8, storeId, 4);
    PutLe(hdr + 12, objId, 4);
    PutLe(hdr + 16, version, 8);
    if (nameLen > 0) {
	memcpy(hdr + OBJ_HDR, name, nameLen);
    }
    return OBJ_HDR + nameLen;
}

/* ------------------------------------------------------------------ */
/* Object files                                                         */
/* ------------------------------------------------------------------ */

/*
 *----------------------------------------------------------------------
 *
 * WriteObject --
 *	Seals an object and writes it durably to relPath (a new file).
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
WriteObject(HsmDevice *dev, const char *relPath, int kind, uint32_t storeId,
	uint32_t objId, const char *name, uint64_t version,
	const uint8_t *data, size_t len)
{
    uint8_t hdr[OBJ_HDR + HSM_BLOB_NAME_MAX];
    size_t hdrLen = ObjectHeader(hdr, kind, storeId, objId, name, version);
    size_t total = hdrLen + GCM_IV + len + GCM_TAG;
    uint8_t *file = malloc(total);
    char *path;
    PlatError perr;
    hsm_err_t err;
    int rc;

    if (file == NULL) {
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory to write %s", relPath);
    }
    memcpy(file, hdr, hdrLen);
    if ((err = GcmSeal(dev, dev->nvmKey, hdr, hdrLen, data, len,
	    file + hdrLen)) != HSM_NO_ERROR) {
	free(file);
	return err;
    }
    if ((path = plat_join(dev->dir, relPath)) == NULL) {
	free(file);
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory to write %s", relPath);
    }
    rc = plat_write_file_durable(path, file, total, 0600, &perr);
    free(path);
    free(file);
    if (rc != 0) {
	return hsm_fail(HSM_NVM_ERROR, "%s", perr.msg);
    }
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_device_read_object --
 *	Reads the file of an object at the version the manifest says, checks
 *	its header says exactly that object and version, and decrypts it.
 *	A missing, foreign, older or altered file is refused, naming it:
 *	HSM_KEY_STORE_ERROR for key store objects, HSM_NVM_ERROR otherwise.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_device_read_object(HsmDevice *dev, int kind, uint32_t storeId,
	uint32_t objId, const char *name, uint64_t version, uint8_t **data,
	size_t *len)
{
    hsm_err_t bad = kind == HSM_OBJ_BLOB ? HSM_NVM_ERROR : HSM_KEY_STORE_ERROR;
    uint8_t want[OBJ_HDR + HSM_BLOB_NAME_MAX];
    size_t wantLen, plainLen;
    char rel[128], *path;
    uint8_t *file = NULL, *plain;
    size_t fileLen;
    PlatError perr;
    int rc;

    *data = NULL;
    *len = 0;
    hsm_device_object_path(rel, sizeof(rel), kind, storeId, objId, name,
	    version);
    if ((path = plat_join(dev->dir, rel)) == NULL) {
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory to read %s", rel);
    }
    if (!plat_file_exists(path)) {
	free(path);
	return hsm_fail(bad, "file %s, listed in the manifest, is missing "
		"from %s", rel, dev->dir);
    }
    rc = plat_read_file(path, OBJECT_MAX, &file, &fileLen, &perr);
    free(path);
    if (rc != 0) {
	return hsm_fail(HSM_NVM_ERROR, "%s", perr.msg);
    }
    wantLen = ObjectHeader(want, kind, storeId, objId, name, version);
    if (fileLen < wantLen + GCM_IV + GCM_TAG || memcmp(file, want, 16) != 0) {
	free(file);
	return hsm_fail(bad, "file %s in %s is not the object the manifest "
		"names (bad header)", rel, dev->dir);
    }
    if (memcmp(file, want, wantLen) != 0) {
	uint64_t got = 0;
	int i;

	for (i = 7; i >= 0; i--) {
	    got = (got << 8) | file[16 + i];
	}
	free(file);
	if (got < version) {
	    return hsm_fail(bad, "file %s in %s carries version %llu, the "
		    "manifest says %llu: an older copy was put back "
		    "(rollback refused)", rel, dev->dir,
		    (unsigned long long) got, (unsigned long long) version);
	}
	if (got != version) {
	    return hsm_fail(bad, "file %s in %s carries version %llu, the "
		    "manifest says %llu: the file was altered", rel, dev->dir,
		    (unsigned long long) got, (unsigned long long) version);
	}
	return hsm_fail(bad, "file %s in %s is not the object the manifest "
		"names (bad header)", rel, dev->dir);
    }
    plainLen = fileLen - wantLen - GCM_IV - GCM_TAG;
    if ((plain = hsm_secure_alloc(plainLen)) == NULL) {
	free(file);
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory to read %s", rel);
    }
    if (GcmOpen(dev->nvmKey, file, wantLen, file + wantLen,
	    fileLen - wantLen, plain) != 0) {
	free(file);
	hsm_secure_free(plain, plainLen);
	return hsm_fail(bad, "file %s in %s fails authentication: it was "
		"altered or damaged", rel, dev->dir);
    }
    free(file);
    *data = plain;
    *len = plainLen;
    return HSM_NO_ERROR;
}

/* ------------------------------------------------------------------ */
/* The otp file                                                         */
/* ------------------------------------------------------------------ */

static int
OtpMac(HsmDevice *dev, const uint8_t *body, uint8_t *mac)
{
    EVP_MAC *hmac = hsm_mac_hmac();
    EVP_MAC_CTX *ctx;
    OSSL_PARAM params[2];
    size_t n = 0;
    int ok;

    if (hmac == NULL || (ctx = EVP_MAC_CTX_new(hmac)) == NULL) {
	return -1;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *) "SHA384", 0);
    params[1] = OSSL_PARAM_construct_end();
    ok = EVP_MAC_init(ctx, dev->otpKey, 32, params) == 1
	    && EVP_MAC_update(ctx, body, OTP_BODY) == 1
	    && EVP_MAC_final(ctx, mac, &n, HMAC_LEN) == 1 && n == HMAC_LEN;
    EVP_MAC_CTX_free(ctx);
    return ok ? 0 : -1;
}

static hsm_err_t
WriteOtp(HsmDevice *dev, uint64_t counter, uint64_t generation)
{
    uint8_t file[OTP_LEN];
    PlatError perr;
    char *path;
    int rc;

    memcpy(file, OTP_MAGIC, 4);
    PutLe(file + 4, FORMAT_VERSION, 2);
    PutLe(file + 6, 0, 2);
    PutLe(file + 8, counter, 8);
    PutLe(file + 16, generation, 8);
    if (OtpMac(dev, file, file + OTP_BODY) != 0) {
	return hsm_fail_ossl("computing the otp MAC");
    }
    if ((path = plat_join(dev->dir, "otp")) == NULL) {
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory to write the otp");
    }
    rc = plat_write_file_durable(path, file, sizeof(file), 0600, &perr);
    free(path);
    if (rc != 0) {
	return hsm_fail(HSM_NVM_ERROR, "%s", perr.msg);
    }
    return HSM_NO_ERROR;
}

static hsm_err_t
ReadOtp(HsmDevice *dev, uint64_t *counter, uint64_t *generation)
{
    uint8_t *file, mac[HMAC_LEN];
    size_t len;
    PlatError perr;
    char *path;
    HsmReader r;
    int rc;

    if ((path = plat_join(dev->dir, "otp")) == NULL) {
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory to read the otp");
    }
    if (!plat_file_exists(path)) {
	free(path);
	return hsm_fail(HSM_NVM_ERROR, "file otp is missing from %s",
		dev->dir);
    }
    rc = plat_read_file(path, 4096, &file, &len, &perr);
    free(path);
    if (rc != 0) {
	return hsm_fail(HSM_NVM_ERROR, "%s", perr.msg);
    }
    if (len != OTP_LEN || memcmp(file, OTP_MAGIC, 4) != 0
	    || file[4] != FORMAT_VERSION || file[5] != 0) {
	int magic = len >= 4 && memcmp(file, OTP_MAGIC, 4) == 0;

	free(file);
	return hsm_fail(HSM_NVM_ERROR, "file otp in %s is not an otp file "
		"of this engine (%lu bytes, %d expected, %s)", dev->dir,
		(unsigned long) len,
		OTP_LEN, magic ? "bad header" : "bad magic");
    }
    if (OtpMac(dev, file, mac) != 0) {
	free(file);
	return hsm_fail_ossl("computing the otp MAC");
    }
    if (CRYPTO_memcmp(mac, file + OTP_BODY, HMAC_LEN) != 0) {
	free(file);
	return hsm_fail(HSM_NVM_ERROR, "file otp in %s fails authentication: "
		"it was altered, damaged or comes from another HSM", dev->dir);
    }
    hsm_rd_init(&r, file + 8, 16);
    *counter = hsm_rd_u64(&r);
    *generation = hsm_rd_u64(&r);
    free(file);
    return HSM_NO_ERROR;
}

/* ------------------------------------------------------------------ */
/* The manifest file                                                    */
/* ------------------------------------------------------------------ */

static hsm_err_t
WriteManifest(HsmDevice *dev, const HsmManifest *m)
{
    HsmBuf b;
    hsm_err_t err;

    hsm_buf_init(&b, 0);
    SerializeManifest(m, &b);
    if (b.failed) {
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory to write the manifest");
    }
    err = WriteObject(dev, "manifest", HSM_OBJ_MANIFEST, 0, 0, NULL,
	    m->generation, b.data, b.len);
    hsm_buf_free(&b);
    return err;
}

static hsm_err_t
ReadManifest(HsmDevice *dev, HsmManifest **out)
{
    uint8_t want[OBJ_HDR], *file, *plain;
    size_t len, plainLen;
    PlatError perr;
    const char *why;
    char *path;
    int rc;

    *out = NULL;
    if ((path = plat_join(dev->dir, "manifest")) == NULL) {
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory to read the manifest");
    }
    if (!plat_file_exists(path)) {
	free(path);
	return hsm_fail(HSM_NVM_ERROR, "file manifest is missing from %s",
		dev->dir);
    }
    rc = plat_read_file(path, MANIFEST_MAX, &file, &len, &perr);
    free(path);
    if (rc != 0) {
	return hsm_fail(HSM_NVM_ERROR, "%s", perr.msg);
    }
    /* The version is checked against the otp by the caller. */
    ObjectHeader(want, HSM_OBJ_MANIFEST, 0, 0, NULL, 0);
    if (len < OBJ_HDR + GCM_IV + GCM_TAG || memcmp(file, want, 16) != 0) {
	free(file);
	return hsm_fail(HSM_NVM_ERROR, "file manifest in %s is not a "
		"manifest of this engine (bad header)", dev->dir);
    }
    plainLen = len - OBJ_HDR - GCM_IV - GCM_TAG;
    if ((plain = malloc(plainLen + 1)) == NULL) {
	free(file);
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory to read the manifest");
    }
    if (GcmOpen(dev->nvmKey, file, OBJ_HDR, file + OBJ_HDR, len - OBJ_HDR,
	    plain) != 0) {
	free(file);
	free(plain);
	return hsm_fail(HSM_NVM_ERROR, "file manifest in %s fails "
		"authentication: it was altered, damaged or comes from "
		"another HSM", dev->dir);
    }
    *out = ParseManifest(plain, plainLen, &why);
    if (*out != NULL) {
	uint64_t hdrVersion = 0;
	int i;

	for (i = 7; i >= 0; i--) {
	    hdrVersion = (hdrVersion << 8) | file[16 + i];
	}
	if (hdrVersion != (*out)->generation) {
	    hsm_manifest_free(*out);
	    *out = NULL;
	    why = "header and content disagree on the version";
	}
    }
    free(file);
    free(plain);
    if (*out == NULL) {
	return hsm_fail(HSM_NVM_ERROR, "file manifest in %s is corrupt: %s",
		dev->dir, why);
    }
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * Refresh --
 *	Brings the device's view of the NVM up to date (NVM lock held): if
 *	the otp is not what this process last saw, reads the manifest and
 *	checks the pair is the result of a commit:
 *	  - manifest generation = otp generation and written_at = counter;
 *	  - or one generation ahead with written_at = counter or counter + 1:
 *	    a commit that stopped between its steps 2 and 3, completed here;
 *	anything else is a rollback of one of the two files, refused.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
Refresh(HsmDevice *dev)
{
    uint64_t counter, generation;
    HsmManifest *m;
    hsm_err_t err;

    if ((err = ReadOtp(dev, &counter, &generation)) != HSM_NO_ERROR) {
	dev->nvmValid = 0;
	return err;
    }
    if (dev->nvmValid && counter == dev->counter
	    && generation == dev->generation) {
	return HSM_NO_ERROR;
    }
    dev->nvmValid = 0;
    if ((err = ReadManifest(dev, &m)) != HSM_NO_ERROR) {
	return err;
    }
    if (m->generation == generation && m->writtenAt == counter) {
	/* The state a completed commit left. */
    } else if (m->generation == generation + 1
	    && (m->writtenAt == counter || m->writtenAt == counter + 1)) {
	/* A commit stopped after its commit point: finish it. */
	if ((err = WriteOtp(dev, m->writtenAt, m->generation))
		!= HSM_NO_ERROR) {
	    hsm_manifest_free(m);
	    return hsm_fail_wrap(err, "completing an interrupted commit in %s",
		    dev->dir);
	}
	counter = m->writtenAt;
	generation = m->generation;
    } else if (m->generation < generation || m->writtenAt < counter) {
	err = hsm_fail(HSM_KEY_STORE_ERROR, "file manifest in %s is older "
		"than the otp counter (manifest generation %llu written at "
		"counter %llu, otp counter %llu generation %llu): an older "
		"manifest was put back (rollback refused)", dev->dir,
		(unsigned long long) m->generation,
		(unsigned long long) m->writtenAt,
		(unsigned long long) counter, (unsigned long long) generation);
	hsm_manifest_free(m);
	return err;
    } else {
	err = hsm_fail(HSM_KEY_STORE_ERROR, "file otp in %s is older than "
		"the manifest (otp counter %llu generation %llu, manifest "
		"generation %llu written at counter %llu): an older otp was "
		"put back (rollback refused)", dev->dir,
		(unsigned long long) counter, (unsigned long long) generation,
		(unsigned long long) m->generation,
		(unsigned long long) m->writtenAt);
	hsm_manifest_free(m);
	return err;
    }
    hsm_manifest_free(dev->manifest);
    dev->manifest = m;
    dev->counter = counter;
    dev->generation = generation;
    dev->nvmValid = 1;
    hsm_keystore_invalidate(dev);
    return HSM_NO_ERROR;
}

/* ------------------------------------------------------------------ */
/* Commit                                                               */
/* ------------------------------------------------------------------ */

/* Sets the version of a written object's manifest entry. */
static int
SetVersion(HsmManifest *m, const HsmNvmWrite *w, uint64_t version)
{
    HsmManStore *s;

    if (w->kind == HSM_OBJ_BLOB) {
	HsmManBlob *b = hsm_manifest_blob(m, w->name);

	if (b == NULL) {
	    return -1;
	}
	b->version = version;
	return 0;
    }
    if ((s = hsm_manifest_store(m, w->storeId)) == NULL) {
	return -1;
    }
    if (w->kind == HSM_OBJ_GROUP) {
	HsmManGroup *g = hsm_manifest_group(s, (uint16_t) w->objId);

	if (g == NULL) {
	    return -1;
	}
	g->version = version;
    } else {
	HsmManData *d = hsm_manifest_data(s, (uint16_t) w->objId);

	if (d == NULL) {
	    return -1;
	}
	d->version = version;
    }
    return 0;
}

/* The version of an object in a manifest, 0 if it is not there. */
static uint64_t
GetVersion(const HsmManifest *m, const HsmNvmWrite *w)
{
    HsmManStore *s;

    if (w->kind == HSM_OBJ_BLOB) {
	HsmManBlob *b = hsm_manifest_blob(m, w->name);

	return b ? b->version : 0;
    }
    if ((s = hsm_manifest_store(m, w->storeId)) == NULL) {
	return 0;
    }
    if (w->kind == HSM_OBJ_GROUP) {
	HsmManGroup *g = hsm_manifest_group(s, (uint16_t) w->objId);

	return g ? g->version : 0;
    } else {
	HsmManData *d = hsm_manifest_data(s, (uint16_t) w->objId);

	return d ? d->version : 0;
    }
}

static void
RemoveRel(HsmDevice *dev, const char *rel)
{
    char *path = plat_join(dev->dir, rel);

    if (path != NULL) {
	plat_remove(path, NULL);
	free(path);
    }
}

hsm_err_t
hsm_device_commit(HsmDevice *dev, HsmManifest *next,
	const HsmNvmWrite *writes, size_t nWrites, int moveCounter)
{
    uint64_t newGen = dev->generation + 1;
    uint64_t newAt = dev->counter + (moveCounter ? 1 : 0);
    char rel[128];
    hsm_err_t err;
    size_t i, done = 0;

    if (!dev->fileLocked || !dev->nvmValid) {
	hsm_manifest_free(next);
	return hsm_fail(HSM_GENERAL_ERROR, "commit without the NVM lock "
		"(engine bug)");
    }
    next->generation = newGen;
    next->writtenAt = newAt;

    /* Step 1: every object to its new file. */
    for (i = 0; i < nWrites; i++) {
	const HsmNvmWrite *w = &writes[i];
	char dir[64], *path;
	PlatError perr;

	if (w->data == NULL) {
	    continue;
	}
	if (SetVersion(next, w, newGen) != 0) {
	    err = hsm_fail(HSM_GENERAL_ERROR, "commit of an object the new "
		    "manifest does not list (engine bug)");
	    goto undo;
	}
	ObjectDir(dir, sizeof(dir), w->kind, w->storeId);
	if ((path = plat_join(dev->dir, dir)) == NULL) {
	    err = hsm_fail(HSM_OUT_OF_MEMORY, "no memory for a commit");
	    goto undo;
	}
	if (!plat_is_dir(path)) {
	    /* A new directory: its entry must be durable too. */
	    if (plat_mkdirs(path, 0700, &perr) != 0
		    || plat_sync_dir(dev->dir, &perr) != 0) {
		free(path);
		err = hsm_fail(HSM_NVM_ERROR, "%s", perr.msg);
		goto undo;
	    }
	}
	free(path);
	hsm_device_object_path(rel, sizeof(rel), w->kind, w->storeId,
		w->objId, w->name, newGen);
	if ((err = WriteObject(dev, rel, w->kind, w->storeId, w->objId,
		w->name, newGen, w->data, w->len)) != HSM_NO_ERROR) {
	    goto undo;
	}
	done = i + 1;
    }

    /* Step 2: the manifest, the commit point. */
    if ((err = WriteManifest(dev, next)) != HSM_NO_ERROR) {
	/* It may or may not be on disk: re-read everything next time, and
	 * leave the new files for the collector if they are orphans. */
	dev->nvmValid = 0;
	hsm_manifest_free(next);
	return err;
    }

    /* Step 3: the counter. */
    if ((err = WriteOtp(dev, newAt, newGen)) != HSM_NO_ERROR) {
	dev->nvmValid = 0;
	hsm_manifest_free(next);
	return hsm_fail_wrap(err, "the commit is recorded but the counter "
		"could not be written (it will be completed at the next "
		"access)");
    }

    /* Step 4: the superseded files. */
    for (i = 0; i < nWrites; i++) {
	uint64_t old = GetVersion(dev->manifest, &writes[i]);

	if (old != 0 && old != newGen) {
	    hsm_device_object_path(rel, sizeof(rel), writes[i].kind,
		    writes[i].storeId, writes[i].objId, writes[i].name, old);
	    RemoveRel(dev, rel);
	}
    }
    hsm_manifest_free(dev->manifest);
    dev->manifest = next;
    dev->counter = newAt;
    dev->generation = newGen;
    return HSM_NO_ERROR;

  undo:
    for (i = 0; i < done; i++) {
	if (writes[i].data != NULL) {
	    hsm_device_object_path(rel, sizeof(rel), writes[i].kind,
		    writes[i].storeId, writes[i].objId, writes[i].name, newGen);
	    RemoveRel(dev, rel);
	}
    }
    hsm_manifest_free(next);
    return err;
}

/* ------------------------------------------------------------------ */
/* Garbage collection                                                   */
/* ------------------------------------------------------------------ */

static int
IsReferenced(const HsmManifest *m, const char *dirName, const char *file)
{
    char rel[128], want[128];
    size_t i, j;

    snprintf(rel, sizeof(rel), "%s/%s", dirName, file);
    if (strcmp(dirName, "fw") == 0) {
	for (i = 0; i < m->nBlobs; i++) {
	    hsm_device_object_path(want, sizeof(want), HSM_OBJ_BLOB, 0, 0,
		    m->blobs[i].name, m->blobs[i].version);
	    if (strcmp(want, rel) == 0) {
		return 1;
	    }
	}
	return 0;
    }
    for (i = 0; i < m->nStores; i++) {
	const HsmManStore *s = &m->stores[i];

	for (j = 0; j < s->nGroups; j++) {
	    hsm_device_object_path(want, sizeof(want), HSM_OBJ_GROUP, s->id,
		    s->groups[j].number, NULL, s->groups[j].version);
	    if (strcmp(want, rel) == 0) {
		return 1;
	    }
	}
	for (j = 0; j < s->nData; j++) {
	    hsm_device_object_path(want, sizeof(want), HSM_OBJ_DATA, s->id,
		    s->data[j].id, NULL, s->data[j].version);
	    if (strcmp(want, rel) == 0) {
		return 1;
	    }
	}
    }
    return 0;
}

/*
 *----------------------------------------------------------------------
 *
 * CollectGarbage --
 *	Removes what interrupted commits left (NVM lock held, view valid):
 *	temporary files of the device files, and every file in ks-* and fw
 *	that the manifest does not reference.  Other files are not ours and
 *	are left alone.
 *
 *----------------------------------------------------------------------
 */

static void
CollectGarbage(HsmDevice *dev)
{
    char **names, **n, **files, **f;

    if (plat_list_dir(dev->dir, &names, NULL) != 0) {
	return;
    }
    for (n = names; *n != NULL; n++) {
	const char *name = *n;
	char *path = plat_join(dev->dir, name);
	unsigned id;
	char tail;

	if (path == NULL) {
	    continue;
	}
	if (strncmp(name, "fuse.tmp", 8) == 0 || strncmp(name, "otp.tmp", 7) == 0
		|| strncmp(name, "manifest.tmp", 12) == 0) {
	    plat_remove(path, NULL);
	} else if ((strcmp(name, "fw") == 0
		|| (strlen(name) == 11 && sscanf(name, "ks-%8x%c", &id, &tail) == 1))
		&& plat_is_dir(path)
		&& plat_list_dir(path, &files, NULL) == 0) {
	    for (f = files; *f != NULL; f++) {
		if (!IsReferenced(dev->manifest, name, *f)) {
		    char *victim = plat_join(path, *f);

		    if (victim != NULL) {
			if (!plat_is_dir(victim)) {
			    plat_remove(victim, NULL);
			}
			free(victim);
		    }
		}
	    }
	    plat_free_list(files);
	}
	free(path);
    }
    plat_free_list(names);
}

/* ------------------------------------------------------------------ */
/* The fuse                                                             */
/* ------------------------------------------------------------------ */

/* The key sealing the fuse: scrypt of the passphrase, or the public
 * integrity key.  key is 32 bytes. */
static hsm_err_t
FuseKey(const char *passphrase, const uint8_t *salt, int log2N, uint32_t r,
	uint32_t p, uint8_t *key)
{
    EVP_KDF *kdf;
    EVP_KDF_CTX *ctx;
    OSSL_PARAM params[6], *q = params;
    uint64_t n = (uint64_t) 1 << log2N, maxmem = SCRYPT_MAXMEM;
    int ok;

    if (passphrase == NULL) {
	if (hsm_hkdf((const uint8_t *) FUSE_LABEL_IKM, strlen(FUSE_LABEL_IKM),
		NULL, 0, "spps fuse integrity key v1", key, 32) != 0) {
	    return hsm_fail_ossl("deriving the fuse integrity key");
	}
	return HSM_NO_ERROR;
    }
    if ((kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL)) == NULL) {
	return hsm_fail_ossl("OpenSSL has no SCRYPT");
    }
    ctx = EVP_KDF_CTX_new(kdf);
    EVP_KDF_free(kdf);
    if (ctx == NULL) {
	return hsm_fail_ossl("scrypt");
    }
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
	    (void *) passphrase, strlen(passphrase));
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
	    (void *) salt, 16);
    *q++ = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n);
    *q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r);
    *q++ = OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p);
    *q = OSSL_PARAM_construct_end();
    ok = EVP_KDF_CTX_set_params(ctx, params) == 1;
    if (ok) {
	OSSL_PARAM mm[2];

	mm[0] = OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM,
		&maxmem);
	mm[1] = OSSL_PARAM_construct_end();
	ok = EVP_KDF_CTX_set_params(ctx, mm) == 1
		&& EVP_KDF_derive(ctx, key, 32, NULL) == 1;
    }
    EVP_KDF_CTX_free(ctx);
    return ok ? HSM_NO_ERROR : hsm_fail_ossl("scrypt of the passphrase");
}

static const char *
Passphrase(void)
{
    const char *p = getenv("SPPS_HSM_PASSPHRASE");

    return p != NULL && *p != '\0' ? p : NULL;
}

/*
 *----------------------------------------------------------------------
 *
 * CreateFuse --
 *	Programs the fuse of a new device: a random device secret and chip
 *	id, sealed under SPPS_HSM_PASSPHRASE if set, else under the public
 *	integrity key.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
CreateFuse(HsmDevice *dev, const char *path)
{
    const char *pass = Passphrase();
    uint8_t file[FUSE_LEN], plain[FUSE_PLAIN], key[32];
    PlatError perr;
    hsm_err_t err;

    memset(file, 0, sizeof(file));
    memcpy(file, FUSE_MAGIC, 4);
    PutLe(file + 4, FORMAT_VERSION, 2);
    if (pass != NULL) {
	file[6] = 1;
	file[7] = SCRYPT_LOG2N;
	PutLe(file + 8, SCRYPT_R, 4);
	PutLe(file + 12, SCRYPT_P, 4);
	if ((err = hsm_device_random(dev, file + 16, 16)) != HSM_NO_ERROR) {
	    return err;
	}
    }
    if ((err = hsm_device_random(dev, plain, FUSE_PLAIN)) != HSM_NO_ERROR) {
	return err;
    }
    if ((err = FuseKey(pass, file + 16, SCRYPT_LOG2N, SCRYPT_R, SCRYPT_P,
	    key)) != HSM_NO_ERROR
	    || (err = GcmSeal(dev, key, file, FUSE_HDR, plain, FUSE_PLAIN,
		    file + FUSE_HDR)) != HSM_NO_ERROR) {
	OPENSSL_cleanse(plain, sizeof(plain));
	OPENSSL_cleanse(key, sizeof(key));
	return err;
    }
    OPENSSL_cleanse(key, sizeof(key));
    if (plat_write_file_durable(path, file, sizeof(file), 0600, &perr) != 0) {
	OPENSSL_cleanse(plain, sizeof(plain));
	return hsm_fail(HSM_NVM_ERROR, "%s", perr.msg);
    }
    memcpy(dev->secret, plain, SECRET_LEN);
    memcpy(dev->chipId, plain + SECRET_LEN, CHIPID_LEN);
    dev->sealed = pass != NULL;
    OPENSSL_cleanse(plain, sizeof(plain));
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * ReadFuse --
 *	Reads and unseals the fuse.  A sealed fuse needs the passphrase it
 *	was sealed with (HSM_KEY_STORE_AUTH if missing or wrong); a damaged
 *	unsealed one is HSM_NVM_ERROR.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
ReadFuse(HsmDevice *dev, const char *path)
{
    uint8_t *file, plain[FUSE_PLAIN], key[32];
    const char *pass = NULL;
    PlatError perr;
    size_t len;
    hsm_err_t err;
    int sealed, log2N;
    uint32_t r, p;

    if (plat_read_file(path, 4096, &file, &len, &perr) != 0) {
	return hsm_fail(HSM_NVM_ERROR, "%s", perr.msg);
    }
    if (len != FUSE_LEN || memcmp(file, FUSE_MAGIC, 4) != 0
	    || file[4] != FORMAT_VERSION || file[5] != 0 || file[6] > 1) {
	free(file);
	return hsm_fail(HSM_NVM_ERROR, "file fuse in %s is not a fuse file "
		"of this engine", dev->dir);
    }
    sealed = file[6];
    log2N = file[7];
    r = (uint32_t) file[8] | (uint32_t) file[9] << 8
	    | (uint32_t) file[10] << 16 | (uint32_t) file[11] << 24;
    p = (uint32_t) file[12] | (uint32_t) file[13] << 8
	    | (uint32_t) file[14] << 16 | (uint32_t) file[15] << 24;
    if (sealed) {
	if (log2N < 10 || log2N > 20 || r < 1 || r > 16 || p < 1 || p > 4
		|| ((uint64_t) 128 << log2N) * r > SCRYPT_MAXMEM) {
	    free(file);
	    return hsm_fail(HSM_NVM_ERROR, "file fuse in %s has scrypt "
		    "parameters out of bounds (N 2^%d, r %u, p %u)",
		    dev->dir, log2N, (unsigned) r, (unsigned) p);
	}
	if ((pass = Passphrase()) == NULL) {
	    free(file);
	    return hsm_fail(HSM_KEY_STORE_AUTH, "the HSM in %s is sealed "
		    "under a passphrase: set SPPS_HSM_PASSPHRASE", dev->dir);
	}
    }
    if ((err = FuseKey(pass, file + 16, log2N, r, p, key)) != HSM_NO_ERROR) {
	free(file);
	return err;
    }
    if (GcmOpen(key, file, FUSE_HDR, file + FUSE_HDR, len - FUSE_HDR,
	    plain) != 0) {
	OPENSSL_cleanse(key, sizeof(key));
	free(file);
	if (sealed) {
	    return hsm_fail(HSM_KEY_STORE_AUTH, "file fuse in %s cannot be "
		    "unsealed: SPPS_HSM_PASSPHRASE is wrong (or the file was "
		    "altered)", dev->dir);
	}
	return hsm_fail(HSM_NVM_ERROR, "file fuse in %s fails "
		"authentication: it was altered or damaged", dev->dir);
    }
    OPENSSL_cleanse(key, sizeof(key));
    free(file);
    memcpy(dev->secret, plain, SECRET_LEN);
    memcpy(dev->chipId, plain + SECRET_LEN, CHIPID_LEN);
    OPENSSL_cleanse(plain, sizeof(plain));
    dev->sealed = sealed;
    return HSM_NO_ERROR;
}

int
hsm_device_derive(HsmDevice *dev, const char *label, uint8_t *out, size_t len)
{
    return hsm_hkdf(dev->secret, SECRET_LEN, NULL, 0, label, out, len);
}

/* ------------------------------------------------------------------ */
/* Opening a device                                                     */
/* ------------------------------------------------------------------ */

/* The canonical absolute name of an existing directory, malloc'ed. */
static char *
CanonicalDir(const char *dir)
{
#ifdef _WIN32
    return _fullpath(NULL, dir, 0);
#else
    return realpath(dir, NULL);
#endif
}

/*
 *----------------------------------------------------------------------
 *
 * OpenDevice --
 *	Opens the HSM of a state directory (canonical name given): reads or
 *	creates its fuse, otp and manifest under the lock file, completes an
 *	interrupted commit, and collects the garbage of interrupted ones.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
OpenDevice(char *dir, HsmDevice **out)
{
    HsmDevice *dev = calloc(1, sizeof(*dev));
    char *fuse = NULL, *otp = NULL, *manifest = NULL;
    hsm_err_t err;
    int hasOtp, hasManifest;

    *out = NULL;
    if (dev == NULL) {
	free(dir);
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory for an HSM");
    }
    dev->dir = dir;
    plat_mutex_init(&dev->mutex);
    dev->fileLock.handle = -1;
    dev->secret = hsm_secure_alloc(SECRET_LEN);
    dev->nvmKey = hsm_secure_alloc(32);
    dev->otpKey = hsm_secure_alloc(32);
    fuse = plat_join(dir, "fuse");
    otp = plat_join(dir, "otp");
    manifest = plat_join(dir, "manifest");
    if (dev->secret == NULL || dev->nvmKey == NULL || dev->otpKey == NULL
	    || fuse == NULL || otp == NULL || manifest == NULL) {
	err = hsm_fail(HSM_OUT_OF_MEMORY, "no memory for an HSM");
	goto done;
    }
    StartDrbg(dev);
    if ((err = LockFile(dev)) != HSM_NO_ERROR) {
	goto done;
    }
    hasOtp = plat_file_exists(otp);
    hasManifest = plat_file_exists(manifest);
    if (plat_file_exists(fuse)) {
	err = ReadFuse(dev, fuse);
    } else if (hasOtp || hasManifest) {
	err = hsm_fail(HSM_NVM_ERROR, "file fuse is missing from %s, which "
		"has an NVM: the device secret is lost", dir);
    } else {
	err = CreateFuse(dev, fuse);
    }
    if (err != HSM_NO_ERROR) {
	goto done;
    }
    if (hsm_device_derive(dev, "spps nvm object key v1", dev->nvmKey, 32) != 0
	    || hsm_device_derive(dev, "spps otp mac key v1", dev->otpKey,
		    32) != 0) {
	err = hsm_fail_ossl("deriving the NVM keys");
	goto done;
    }
    if (!hasManifest && !hasOtp) {
	/* A new NVM: an empty manifest at generation 0, then the otp. */
	HsmManifest empty;

	memset(&empty, 0, sizeof(empty));
	empty.lifecycle = HSM_SPPS_LIFECYCLE_OEM_OPEN;
	if ((err = WriteManifest(dev, &empty)) != HSM_NO_ERROR
		|| (err = WriteOtp(dev, 0, 0)) != HSM_NO_ERROR) {
	    goto done;
	}
    } else if (!hasOtp) {
	/* Only the creation above may stop with a manifest and no otp,
	 * and its manifest is generation 0. */
	HsmManifest *m;

	if ((err = ReadManifest(dev, &m)) != HSM_NO_ERROR) {
	    goto done;
	}
	if (m->generation != 0 || m->writtenAt != 0) {
	    hsm_manifest_free(m);
	    err = hsm_fail(HSM_NVM_ERROR, "file otp is missing from %s",
		    dir);
	    goto done;
	}
	hsm_manifest_free(m);
	if ((err = WriteOtp(dev, 0, 0)) != HSM_NO_ERROR) {
	    goto done;
	}
    } else if (!hasManifest) {
	err = hsm_fail(HSM_NVM_ERROR, "file manifest is missing from %s",
		dir);
	goto done;
    }
    if ((err = Refresh(dev)) != HSM_NO_ERROR) {
	goto done;
    }
    CollectGarbage(dev);

  done:
    if (dev->fileLocked) {
	plat_unlock(&dev->fileLock);
	dev->fileLocked = 0;
    }
    free(fuse);
    free(otp);
    free(manifest);
    if (err != HSM_NO_ERROR) {
	hsm_device_destroy(dev);
	return err;
    }
    *out = dev;
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_device_acquire --
 *	The device of a state directory, opened if this process has not
 *	opened it yet (creating the directory and the HSM if new), with one
 *	more reference for the caller.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_device_acquire(const char *dir, HsmDevice **out)
{
    HsmDevice *dev;
    PlatError perr;
    char *canon;
    hsm_err_t err;

    *out = NULL;
    if (*dir == '\0') {
	return hsm_fail(HSM_INVALID_PARAM, "open_session: the state "
		"directory name is empty");
    }
    if (plat_mkdirs(dir, 0700, &perr) != 0) {
	return hsm_fail(HSM_NVM_ERROR, "%s", perr.msg);
    }
    if ((canon = CanonicalDir(dir)) == NULL) {
	return hsm_fail(HSM_NVM_ERROR, "cannot find the absolute name of %s",
		dir);
    }
    plat_mutex_lock(&registryMutex);
    hsm_global_lock();
    for (dev = devices; dev != NULL; dev = dev->next) {
	if (strcmp(dev->dir, canon) == 0) {
	    dev->refs++;
	    break;
	}
    }
    hsm_global_unlock();
    if (dev != NULL) {
	plat_mutex_unlock(&registryMutex);
	free(canon);
	*out = dev;
	return HSM_NO_ERROR;
    }
    if ((err = OpenDevice(canon, &dev)) != HSM_NO_ERROR) {
	plat_mutex_unlock(&registryMutex);
	return err;
    }
    hsm_global_lock();
    dev->refs = 1;
    dev->next = devices;
    devices = dev;
    hsm_global_unlock();
    plat_mutex_unlock(&registryMutex);
    *out = dev;
    return HSM_NO_ERROR;
}
