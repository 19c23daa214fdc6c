/*
 * hsm_keystore.c --
 *
 *	Key stores, key groups and the key group cache.
 *
 *	A key store service holds its own in-memory image of the store: the
 *	groups it has read or changed, and a hash table from key id to key,
 *	so that finding a cached key costs one probe.  Persistent groups are
 *	read from the NVM when first needed and count against the device's
 *	cache of HSM_CACHE_GROUPS ("HSM local memory"); transient groups live
 *	in memory only and do not count.  Changes stay in memory until a
 *	strict operation writes the group: then the group is merged with the
 *	newest version in the NVM (another service or process may have
 *	written it since) and committed.
 *
 *	Everything here runs with the device lock held.
 */

#include "hsm_core.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

/* Bytes a key takes in a serialized group: id, type, info, length. */
#define KEY_OVERHEAD 8
#define GROUP_OVERHEAD 4

static void FreeGroup(HsmKeyStore *ks, HsmGroup *g);
static hsm_err_t SyncGroup(HsmKeyStore *ks, HsmGroup *g);

/* ------------------------------------------------------------------ */
/* Keys                                                                 */
/* ------------------------------------------------------------------ */

HsmKey *
hsm_keystore_new_key(uint32_t id, hsm_key_type_t type, hsm_key_group_t group,
	hsm_key_info_t info, const uint8_t *secret, size_t secretLen)
{
    HsmKey *k = calloc(1, sizeof(*k));

    if (k == NULL) {
	return NULL;
    }
    if ((k->secret = hsm_secure_alloc(secretLen)) == NULL) {
	free(k);
	return NULL;
    }
    memcpy(k->secret, secret, secretLen);
    k->secretLen = secretLen;
    k->id = id;
    k->type = type;
    k->group = group;
    k->info = info;
    k->typeInfo = hsm_key_type_info(type);
    return k;
}

void
hsm_keystore_free_key(HsmKey *k)
{
    if (k != NULL) {
	hsm_secure_free(k->secret, k->secretLen);
	EVP_PKEY_free(k->pkey);
	free(k);
    }
}

hsm_err_t
hsm_keystore_pkey(HsmKey *k)
{
    if (k->pkey == NULL && k->typeInfo->isEc) {
	if (hsm_ec_from_private(k->typeInfo, k->secret, k->secretLen,
		&k->pkey) != 0) {
	    return hsm_fail_ossl("building the EC key");
	}
    }
    return HSM_NO_ERROR;
}

/* ------------------------------------------------------------------ */
/* Id sets (small, unsorted)                                            */
/* ------------------------------------------------------------------ */

static int
IdSetHas(const HsmIdSet *s, uint32_t id)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
	if (s->ids[i] == id) {
	    return 1;
	}
    }
    return 0;
}

static int
IdSetAdd(HsmIdSet *s, uint32_t id)
{
    if (IdSetHas(s, id)) {
	return 0;
    }
    if (s->n == s->room) {
	size_t room = s->room ? 2 * s->room : 8;
	uint32_t *ids = realloc(s->ids, room * sizeof(uint32_t));

	if (ids == NULL) {
	    return -1;
	}
	s->ids = ids;
	s->room = room;
    }
    s->ids[s->n++] = id;
    return 0;
}

static void
IdSetRemove(HsmIdSet *s, uint32_t id)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
	if (s->ids[i] == id) {
	    s->ids[i] = s->ids[--s->n];
	    return;
	}
    }
}

static void
IdSetFree(HsmIdSet *s)
{
    free(s->ids);
    memset(s, 0, sizeof(*s));
}

/* ------------------------------------------------------------------ */
/* The key table: open addressing, linear probing                       */
/* ------------------------------------------------------------------ */

static size_t
Slot(uint32_t id, size_t size)
{
    return (size_t) ((id * 2654435761u) & (uint32_t) (size - 1));
}

static HsmKey *
TableFind(const HsmKeyStore *ks, uint32_t id)
{
    size_t mask = ks->tableSize - 1, i;

    if (ks->tableSize == 0) {
	return NULL;
    }
    for (i = Slot(id, ks->tableSize); ks->table[i] != NULL;
	    i = (i + 1) & mask) {
	if (ks->table[i]->id == id) {
	    return ks->table[i];
	}
    }
    return NULL;
}

static int
TableAdd(HsmKeyStore *ks, HsmKey *k)
{
    size_t i, mask;

    if (2 * (ks->tableUsed + 1) > ks->tableSize) {
	size_t size = ks->tableSize ? 2 * ks->tableSize : 64;
	HsmKey **table = calloc(size, sizeof(HsmKey *));

	if (table == NULL) {
	    return -1;
	}
	for (i = 0; i < ks->tableSize; i++) {
	    if (ks->table[i] != NULL) {
		size_t j = Slot(ks->table[i]->id, size);

		while (table[j] != NULL) {
		    j = (j + 1) & (size - 1);
		}
		table[j] = ks->table[i];
	    }
	}
	free(ks->table);
	ks->table = table;
	ks->tableSize = size;
    }
    mask = ks->tableSize - 1;
    for (i = Slot(k->id, ks->tableSize); ks->table[i] != NULL;
	    i = (i + 1) & mask) {
	if (ks->table[i]->id == k->id) {
	    ks->table[i] = k;
	    return 0;
	}
    }
    ks->table[i] = k;
    ks->tableUsed++;
    return 0;
}

static void
TableRemove(HsmKeyStore *ks, uint32_t id)
{
    size_t mask = ks->tableSize - 1, i, j;

    if (ks->tableSize == 0) {
	return;
    }
    for (i = Slot(id, ks->tableSize); ks->table[i] != NULL;
	    i = (i + 1) & mask) {
	if (ks->table[i]->id == id) {
	    break;
	}
    }
    if (ks->table[i] == NULL) {
	return;
    }
    /* Backward-shift deletion: keep every probe chain unbroken. */
    j = i;
    for (;;) {
	size_t home;

	j = (j + 1) & mask;
	if (ks->table[j] == NULL) {
	    break;
	}
	home = Slot(ks->table[j]->id, ks->tableSize);
	if ((j > i && (home <= i || home > j))
		|| (j < i && home <= i && home > j)) {
	    ks->table[i] = ks->table[j];
	    i = j;
	}
    }
    ks->table[i] = NULL;
    ks->tableUsed--;
}

/* ------------------------------------------------------------------ */
/* The cache                                                            */
/* ------------------------------------------------------------------ */

static void
CacheUnlink(HsmDevice *dev, HsmGroup *g)
{
    if (!g->cached) {
	return;
    }
    if (g->cachePrev) {
	g->cachePrev->cacheNext = g->cacheNext;
    } else {
	dev->cacheHead = g->cacheNext;
    }
    if (g->cacheNext) {
	g->cacheNext->cachePrev = g->cachePrev;
    }
    g->cachePrev = g->cacheNext = NULL;
    g->cached = 0;
    dev->cacheCount--;
}

static void
CachePushFront(HsmDevice *dev, HsmGroup *g)
{
    g->cachePrev = NULL;
    g->cacheNext = dev->cacheHead;
    if (dev->cacheHead) {
	dev->cacheHead->cachePrev = g;
    }
    dev->cacheHead = g;
    g->cached = 1;
    dev->cacheCount++;
}

/* Marks a group used by the current operation: most recently used, and
 * pinned (not evicted until the operation ends). */
static void
Touch(HsmDevice *dev, HsmGroup *g)
{
    g->pinSerial = dev->opSerial;
    if (g->cached && dev->cacheHead != g) {
	CacheUnlink(dev, g);
	CachePushFront(dev, g);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * MakeRoom --
 *	Frees a place in the cache if it is full: evicts the least recently
 *	used clean group that is neither locked nor in use, else writes the
 *	least recently used dirty one (a strict write) and evicts it, else
 *	fails with HSM_OUT_OF_MEMORY.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
MakeRoom(HsmDevice *dev, uint32_t storeId, uint16_t wanted)
{
    while (dev->cacheCount >= HSM_CACHE_GROUPS) {
	HsmGroup *g, *tail = NULL, *victim = NULL;

	for (g = dev->cacheHead; g != NULL; g = g->cacheNext) {
	    tail = g;
	}
	for (g = tail; g != NULL; g = g->cachePrev) {
	    if (!g->locked && g->pinSerial != dev->opSerial && !g->dirty) {
		victim = g;
		break;
	    }
	}
	if (victim == NULL) {
	    for (g = tail; g != NULL; g = g->cachePrev) {
		if (!g->locked && g->pinSerial != dev->opSerial) {
		    hsm_err_t err = hsm_keystore_write_group(g->ks, g);

		    if (err != HSM_NO_ERROR && err != HSM_KEY_STORE_COUNTER) {
			return hsm_fail_wrap(err, "the key group cache is "
				"full and key group %u of key store %u could "
				"not be written to make room for group %u",
				g->number, (unsigned) g->ks->id,
				(unsigned) wanted);
		    }
		    victim = g;
		    break;
		}
	    }
	}
	if (victim == NULL) {
	    char list[128];
	    size_t n = 0;

	    list[0] = '\0';
	    for (g = dev->cacheHead; g != NULL && n < sizeof(list) - 24;
		    g = g->cacheNext) {
		n += (size_t) snprintf(list + n, sizeof(list) - n, "%s%u%s",
			n ? ", " : "", g->number,
			g->locked ? " (locked)" : " (in use)");
	    }
	    return hsm_fail(HSM_OUT_OF_MEMORY, "the key group cache is full "
		    "(%d groups: %s): cannot bring in key group %u of key "
		    "store %u; unlock a group with manage_key_group",
		    HSM_CACHE_GROUPS, list, (unsigned) wanted,
		    (unsigned) storeId);
	}
	FreeGroup(victim->ks, victim);
    }
    return HSM_NO_ERROR;
}

/* ------------------------------------------------------------------ */
/* Groups                                                               */
/* ------------------------------------------------------------------ */

static HsmGroup *
NewGroup(HsmKeyStore *ks, uint16_t number, int transient)
{
    HsmGroup *g = calloc(1, sizeof(*g));

    if (g == NULL) {
	return NULL;
    }
    g->ks = ks;
    g->number = number;
    g->transient = transient;
    g->bytes = GROUP_OVERHEAD;
    g->pinSerial = ks->device->opSerial;
    ks->groups[number] = g;
    if (!transient) {
	CachePushFront(ks->device, g);
    }
    return g;
}

/* Frees a group and its keys (dropping unwritten changes). */
static void
FreeGroup(HsmKeyStore *ks, HsmGroup *g)
{
    size_t i;

    for (i = 0; i < g->nKeys; i++) {
	TableRemove(ks, g->keys[i]->id);
	hsm_keystore_free_key(g->keys[i]);
    }
    free(g->keys);
    IdSetFree(&g->changed);
    IdSetFree(&g->created);
    IdSetFree(&g->deleted);
    CacheUnlink(ks->device, g);
    if (ks->groups[g->number] == g) {
	ks->groups[g->number] = NULL;
    }
    free(g);
}

static size_t
KeyBytes(const HsmKey *k)
{
    return KEY_OVERHEAD + k->secretLen;
}

static int
GroupAppend(HsmGroup *g, HsmKey *k)
{
    if (g->nKeys == g->room) {
	size_t room = g->room ? 2 * g->room : 8;
	HsmKey **keys = realloc(g->keys, room * sizeof(HsmKey *));

	if (keys == NULL) {
	    return -1;
	}
	g->keys = keys;
	g->room = room;
    }
    g->keys[g->nKeys++] = k;
    g->bytes += KeyBytes(k);
    return 0;
}

static long
GroupIndex(const HsmGroup *g, uint32_t id)
{
    size_t i;

    for (i = 0; i < g->nKeys; i++) {
	if (g->keys[i]->id == id) {
	    return (long) i;
	}
    }
    return -1;
}

/*
 *----------------------------------------------------------------------
 *
 * SerializeKeys, ParseKeys --
 *	A group's plaintext: u32 count, then per key u32 id, u8 type, u16
 *	info, u8 length, the key bytes.  Parsing checks every field.
 *
 *----------------------------------------------------------------------
 */

static void
SerializeKeys(HsmKey *const *keys, size_t n, HsmBuf *b)
{
    size_t i;

    hsm_buf_u32(b, (uint32_t) n);
    for (i = 0; i < n; i++) {
	hsm_buf_u32(b, keys[i]->id);
	hsm_buf_u8(b, keys[i]->type);
	hsm_buf_u16(b, keys[i]->info);
	hsm_buf_u8(b, (uint8_t) keys[i]->secretLen);
	hsm_buf_bytes(b, keys[i]->secret, keys[i]->secretLen);
    }
}

static void
FreeKeyList(HsmKey **keys, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
	hsm_keystore_free_key(keys[i]);
    }
    free(keys);
}

/* Reads the NVM version of a group into a key list (NVM lock held). */
static hsm_err_t
ReadGroup(HsmKeyStore *ks, const HsmManGroup *mg, HsmKey ***keysOut,
	size_t *nOut)
{
    HsmDevice *dev = ks->device;
    uint8_t *plain;
    size_t len, i, j;
    HsmKey **keys = NULL;
    HsmReader r;
    uint32_t n;
    char rel[128];
    hsm_err_t err;

    *keysOut = NULL;
    *nOut = 0;
    if ((err = hsm_device_read_object(dev, HSM_OBJ_GROUP, ks->id, mg->number,
	    NULL, mg->version, &plain, &len)) != HSM_NO_ERROR) {
	return err;
    }
    hsm_device_object_path(rel, sizeof(rel), HSM_OBJ_GROUP, ks->id,
	    mg->number, NULL, mg->version);
    hsm_rd_init(&r, plain, len);
    n = hsm_rd_u32(&r);
    if (r.bad || n != mg->nKeys || n > len / (KEY_OVERHEAD + 16)) {
	err = hsm_fail(HSM_KEY_STORE_ERROR, "file %s in %s holds %u keys, the "
		"manifest says %u", rel, dev->dir, (unsigned) n,
		(unsigned) mg->nKeys);
	goto done;
    }
    if ((keys = calloc(n ? n : 1, sizeof(HsmKey *))) == NULL) {
	err = hsm_fail(HSM_OUT_OF_MEMORY, "no memory to read %s", rel);
	goto done;
    }
    for (i = 0; i < n; i++) {
	uint32_t id = hsm_rd_u32(&r);
	hsm_key_type_t type = hsm_rd_u8(&r);
	hsm_key_info_t info = hsm_rd_u16(&r);
	uint8_t slen = hsm_rd_u8(&r);
	const uint8_t *secret = hsm_rd_bytes(&r, slen);
	const HsmKeyTypeInfo *ti = hsm_key_type_info(type);

	if (secret == NULL || ti == NULL || !ti->supported || slen != ti->size
		|| id == 0 || (info & ~(HSM_KEY_INFO_PERMANENT
			| HSM_KEY_INFO_MASTER | HSM_KEY_INFO_KEK)) != 0
		|| id != mg->keyIds[i]) {
	    err = hsm_fail(HSM_KEY_STORE_ERROR, "file %s in %s: key %u of the "
		    "group is malformed or not the one the manifest lists",
		    rel, dev->dir, (unsigned) i);
	    goto done;
	}
	for (j = 0; j < i; j++) {
	    if (keys[j]->id == id) {
		err = hsm_fail(HSM_KEY_STORE_ERROR, "file %s in %s lists key "
			"0x%08x twice", rel, dev->dir, (unsigned) id);
		goto done;
	    }
	}
	if ((keys[i] = hsm_keystore_new_key(id, type, mg->number, info,
		secret, slen)) == NULL) {
	    err = hsm_fail(HSM_OUT_OF_MEMORY, "no memory to read %s", rel);
	    goto done;
	}
	*nOut = i + 1;
    }
    if (r.left != 0) {
	err = hsm_fail(HSM_KEY_STORE_ERROR, "file %s in %s has %lu bytes "
		"after its last key", rel, dev->dir, (unsigned long) r.left);
	goto done;
    }
    *keysOut = keys;
    keys = NULL;

  done:
    if (keys != NULL) {
	FreeKeyList(keys, *nOut);
	*nOut = 0;
    }
    hsm_secure_free(plain, len);
    return err;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_keystore_group --
 *	The group number of the store, in memory: cached already, else read
 *	from the NVM (making room in the cache), else new and empty if
 *	create.  A new group is transient if transient is 1; -1 accepts
 *	either kind for an existing group.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
GetGroup(HsmKeyStore *ks, uint16_t number, int create, int transient,
	HsmGroup **out)
{
    HsmDevice *dev = ks->device;
    HsmGroup *g = ks->groups[number];
    const HsmManStore *s;
    const HsmManGroup *mg = NULL;
    HsmKey **keys;
    size_t n, i;
    hsm_err_t err;

    *out = NULL;
    if (g != NULL) {
	if (transient >= 0 && g->transient != transient) {
	    if (g->nKeys > 0 || g->version != 0) {
		return hsm_fail(HSM_INVALID_PARAM, "key group %u of key store "
			"%u holds %s keys: %s keys cannot join it (transient "
			"and persistent keys never share a group)", number,
			(unsigned) ks->id, g->transient ? "transient"
			: "persistent", transient ? "transient" : "persistent");
	    }
	    /* An empty group that was never written changes kind. */
	    if (transient) {
		CacheUnlink(dev, g);
		g->transient = 1;
		g->locked = 0;
	    } else {
		if ((err = MakeRoom(dev, ks->id, number)) != HSM_NO_ERROR) {
		    return err;
		}
		g->transient = 0;
		CachePushFront(dev, g);
	    }
	}
	Touch(dev, g);
	*out = g;
	return HSM_NO_ERROR;
    }
    if ((err = hsm_device_nvm_begin(dev)) != HSM_NO_ERROR) {
	return err;
    }
    if ((s = hsm_manifest_store(dev->manifest, ks->id)) != NULL) {
	mg = hsm_manifest_group(s, number);
    }
    if (mg != NULL && transient == 1) {
	return hsm_fail(HSM_INVALID_PARAM, "key group %u of key store %u "
		"holds persistent keys: transient keys cannot join it",
		number, (unsigned) ks->id);
    }
    if (mg == NULL && !create) {
	return hsm_fail(HSM_UNKNOWN_ID, "key group %u of key store %u does "
		"not exist", number, (unsigned) ks->id);
    }
    if (mg == NULL && transient == 1) {
	if ((g = NewGroup(ks, number, 1)) == NULL) {
	    return hsm_fail(HSM_OUT_OF_MEMORY, "no memory for key group %u",
		    number);
	}
	*out = g;
	return HSM_NO_ERROR;
    }
    if ((err = MakeRoom(dev, ks->id, number)) != HSM_NO_ERROR) {
	return err;
    }
    /* Making room may have committed: the manifest is a new one. */
    mg = NULL;
    if ((s = hsm_manifest_store(dev->manifest, ks->id)) != NULL) {
	mg = hsm_manifest_group(s, number);
    }
    if (mg == NULL) {
	if ((g = NewGroup(ks, number, 0)) == NULL) {
	    return hsm_fail(HSM_OUT_OF_MEMORY, "no memory for key group %u",
		    number);
	}
	*out = g;
	return HSM_NO_ERROR;
    }
    if ((err = ReadGroup(ks, mg, &keys, &n)) != HSM_NO_ERROR) {
	return err;
    }
    if ((g = NewGroup(ks, number, 0)) == NULL) {
	FreeKeyList(keys, n);
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory for key group %u",
		number);
    }
    g->version = mg->version;
    for (i = 0; i < n; i++) {
	if (TableFind(ks, keys[i]->id) != NULL) {
	    /* The id is taken by a key of another group in memory (a
	     * pending key of this service): drop the group. */
	    err = hsm_fail(HSM_ID_CONFLICT, "key 0x%08x of key group %u in "
		    "the NVM has the id of a key of this service in another "
		    "group", (unsigned) keys[i]->id, number);
	    for (; i < n; i++) {
		hsm_keystore_free_key(keys[i]);
	    }
	    free(keys);
	    FreeGroup(ks, g);
	    return err;
	}
	if (GroupAppend(g, keys[i]) != 0 || TableAdd(ks, keys[i]) != 0) {
	    if (g->nKeys == 0 || g->keys[g->nKeys - 1] != keys[i]) {
		hsm_keystore_free_key(keys[i]);
	    }
	    for (i++; i < n; i++) {
		hsm_keystore_free_key(keys[i]);
	    }
	    free(keys);
	    FreeGroup(ks, g);
	    return hsm_fail(HSM_OUT_OF_MEMORY, "no memory for key group %u",
		    number);
	}
    }
    free(keys);
    *out = g;
    return HSM_NO_ERROR;
}

hsm_err_t
hsm_keystore_group(HsmKeyStore *ks, uint16_t number, int create,
	HsmGroup **group)
{
    return GetGroup(ks, number, create, create ? 0 : -1, group);
}

hsm_err_t
hsm_keystore_group_for(HsmKeyStore *ks, uint16_t number, hsm_key_info_t info,
	HsmGroup **group)
{
    return GetGroup(ks, number, 1, (info & HSM_KEY_INFO_TRANSIENT) ? 1 : 0,
	    group);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_keystore_find --
 *	A key of the store by id: from the table if its group is in memory,
 *	else through the manifest, reading its group.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_keystore_find(HsmKeyStore *ks, uint32_t keyId, HsmKey **key,
	HsmGroup **group)
{
    HsmDevice *dev = ks->device;
    const HsmManStore *s;
    HsmKey *k = TableFind(ks, keyId);
    HsmGroup *g;
    hsm_err_t err;
    int number;

    *key = NULL;
    if (group) {
	*group = NULL;
    }
    if (k == NULL) {
	if (keyId == 0) {
	    return hsm_fail(HSM_UNKNOWN_ID, "key id 0 names no key");
	}
	if ((err = hsm_device_nvm_begin(dev)) != HSM_NO_ERROR) {
	    return err;
	}
	s = hsm_manifest_store(dev->manifest, ks->id);
	number = s ? hsm_manifest_key_group(s, keyId) : -1;
	if (number < 0) {
	    return hsm_fail(HSM_UNKNOWN_ID, "key 0x%08x is not in key store "
		    "%u", (unsigned) keyId, (unsigned) ks->id);
	}
	if ((g = ks->groups[number]) != NULL) {
	    /* In memory but older than the NVM (or deleted here). */
	    g->pinSerial = dev->opSerial;
	    if ((err = SyncGroup(ks, g)) != HSM_NO_ERROR) {
		return err;
	    }
	    if ((k = TableFind(ks, keyId)) == NULL) {
		return hsm_fail(HSM_UNKNOWN_ID, "key 0x%08x of key store %u "
			"was deleted by this service (not yet written)",
			(unsigned) keyId, (unsigned) ks->id);
	    }
	} else if ((err = GetGroup(ks, (uint16_t) number, 0, -1, &g))
		!= HSM_NO_ERROR) {
	    return err;
	}
	if (k == NULL && (k = TableFind(ks, keyId)) == NULL) {
	    return hsm_fail(HSM_KEY_STORE_ERROR, "key 0x%08x is listed in "
		    "key group %d of key store %u but is not in its file",
		    (unsigned) keyId, number, (unsigned) ks->id);
	}
    }
    g = ks->groups[k->group];
    Touch(dev, g);
    *key = k;
    if (group) {
	*group = g;
    }
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_op_key --
 *	The key an operation on a key store service (or a service under one)
 *	uses, checked for the use.  The fast path (a cached key) is a table
 *	probe and a few checks.
 *
 *----------------------------------------------------------------------
 */

static const char *const useNames[] = {
    "cipher", "mac", "signature generation", "ECIES decryption",
    "public key recovery", "key import (as KEK)", "butterfly key expansion"
};

hsm_err_t
hsm_op_key(HsmOp *op, uint32_t keyId, HsmKeyUse use, const HsmKey **keyOut)
{
    HsmKeyStore *ks = op->obj->keyStore;
    HsmKey *k;
    hsm_err_t err;
    const char *need = NULL;

    *keyOut = NULL;
    if (ks == NULL) {
	return hsm_fail(HSM_UNKNOWN_HANDLE, "handle %u is not under a key "
		"store service", (unsigned) op->obj->handle);
    }
    if ((err = hsm_keystore_find(ks, keyId, &k, NULL)) != HSM_NO_ERROR) {
	return err;
    }
    switch (use) {
    case HSM_USE_CIPHER:
    case HSM_USE_MAC:
	if (k->typeInfo->isEc || (k->info & HSM_KEY_INFO_KEK)) {
	    need = "an AES key without the KEK attribute";
	}
	break;
    case HSM_USE_SIGN:
    case HSM_USE_PUBLIC:
	if (!k->typeInfo->isEc) {
	    need = "an EC key";
	}
	break;
    case HSM_USE_ECIES:
	if (k->type != HSM_KEY_TYPE_ECDSA_NIST_P256
		&& k->type != HSM_KEY_TYPE_ECDSA_BRAINPOOL_R1_256) {
	    need = "an EC key on NIST P-256 or brainpoolP256r1";
	}
	break;
    case HSM_USE_KEK:
	if (k->type != HSM_KEY_TYPE_AES_256 || !(k->info & HSM_KEY_INFO_KEK)) {
	    need = "an AES-256 key with the KEK attribute";
	}
	break;
    case HSM_USE_DERIVE:
	if (!k->typeInfo->isEc || !(k->info & HSM_KEY_INFO_MASTER)) {
	    need = "an EC key with the MASTER attribute";
	}
	break;
    default:
	need = "a known use";
	break;
    }
    if (need != NULL) {
	return hsm_fail(HSM_INVALID_PARAM, "key 0x%08x is %s%s%s: %s needs %s",
		(unsigned) keyId, k->typeInfo->name,
		(k->info & HSM_KEY_INFO_KEK) ? " (KEK)" : "",
		(k->info & HSM_KEY_INFO_MASTER) ? " (MASTER)" : "",
		(unsigned) use < sizeof(useNames) / sizeof(useNames[0])
		? useNames[use] : "this operation", need);
    }
    if (k->pkey == NULL && k->typeInfo->isEc
	    && (err = hsm_keystore_pkey(k)) != HSM_NO_ERROR) {
	return err;
    }
    *keyOut = k;
    return HSM_NO_ERROR;
}

/* ------------------------------------------------------------------ */
/* Changing keys                                                        */
/* ------------------------------------------------------------------ */

/*
 *----------------------------------------------------------------------
 *
 * hsm_keystore_new_id --
 *	A random non-zero key id from the device's DRBG that no key of the
 *	store has (in this service's memory or in the NVM).
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_keystore_new_id(HsmKeyStore *ks, uint32_t *id)
{
    HsmDevice *dev = ks->device;
    const HsmManStore *s = NULL;
    hsm_err_t err;
    int tries;

    *id = 0;
    if (dev->nvmValid) {
	s = hsm_manifest_store(dev->manifest, ks->id);
    }
    for (tries = 0; tries < 64; tries++) {
	uint8_t b[4];
	uint32_t v;

	if ((err = hsm_device_random(dev, b, 4)) != HSM_NO_ERROR) {
	    return err;
	}
	v = (uint32_t) b[0] | (uint32_t) b[1] << 8 | (uint32_t) b[2] << 16
		| (uint32_t) b[3] << 24;
	if (v == 0 || TableFind(ks, v) != NULL
		|| (s != NULL && hsm_manifest_key_group(s, v) >= 0)) {
	    continue;
	}
	*id = v;
	return HSM_NO_ERROR;
    }
    return hsm_fail(HSM_GENERAL_ERROR, "no free key id found in key store %u",
	    (unsigned) ks->id);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_keystore_put --
 *	Puts a key into a group in memory: a new key (created) or the new
 *	version of an existing key of the same id, which it replaces.  The
 *	group must stay within HSM_GROUP_MAX_BYTES.  On success the store
 *	owns the key; on failure the caller still does.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_keystore_put(HsmKeyStore *ks, HsmGroup *g, HsmKey *k, int created)
{
    long at = GroupIndex(g, k->id);
    size_t bytes = g->bytes + KeyBytes(k)
	    - (at >= 0 ? KeyBytes(g->keys[at]) : 0);

    if (bytes > HSM_GROUP_MAX_BYTES) {
	return hsm_fail(HSM_OUT_OF_MEMORY, "key group %u of key store %u is "
		"full: its key material would take %lu bytes, at most %d are "
		"allowed", g->number, (unsigned) ks->id, (unsigned long) bytes,
		HSM_GROUP_MAX_BYTES);
    }
    if (!g->transient && (IdSetAdd(&g->changed, k->id) != 0
	    || (created && IdSetAdd(&g->created, k->id) != 0))) {
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory for key 0x%08x",
		(unsigned) k->id);
    }
    if (at >= 0) {
	HsmKey *old = g->keys[at];

	if (TableAdd(ks, k) != 0) {
	    return hsm_fail(HSM_OUT_OF_MEMORY, "no memory for key 0x%08x",
		    (unsigned) k->id);
	}
	g->keys[at] = k;
	g->bytes = bytes;
	hsm_keystore_free_key(old);
    } else {
	if (GroupAppend(g, k) != 0) {
	    return hsm_fail(HSM_OUT_OF_MEMORY, "no memory for key 0x%08x",
		    (unsigned) k->id);
	}
	if (TableAdd(ks, k) != 0) {
	    g->nKeys--;
	    g->bytes -= KeyBytes(k);
	    return hsm_fail(HSM_OUT_OF_MEMORY, "no memory for key 0x%08x",
		    (unsigned) k->id);
	}
    }
    IdSetRemove(&g->deleted, k->id);
    k->group = g->number;
    if (!g->transient) {
	g->dirty = 1;
    }
    return HSM_NO_ERROR;
}

void
hsm_keystore_delete(HsmKeyStore *ks, HsmGroup *g, uint32_t keyId)
{
    long at = GroupIndex(g, keyId);
    HsmKey *k;

    if (at < 0) {
	return;
    }
    k = g->keys[at];
    TableRemove(ks, keyId);
    g->bytes -= KeyBytes(k);
    g->keys[at] = g->keys[--g->nKeys];
    hsm_keystore_free_key(k);
    if (!g->transient) {
	IdSetRemove(&g->changed, keyId);
	if (IdSetHas(&g->created, keyId)) {
	    /* Never written: nothing to delete in the NVM. */
	    IdSetRemove(&g->created, keyId);
	} else {
	    IdSetAdd(&g->deleted, keyId);
	}
	g->dirty = 1;
    }
}

/* ------------------------------------------------------------------ */
/* Writing                                                              */
/* ------------------------------------------------------------------ */

hsm_err_t
hsm_keystore_persist(HsmKeyStore *ks, HsmManifest *next)
{
    HsmManStore *s = hsm_manifest_store(next, ks->id);

    if (s != NULL) {
	if (s->nonce != ks->nonce) {
	    return hsm_fail(HSM_KEY_STORE_CONFLICT, "key store %u was created "
		    "by another service or process with another "
		    "authentication nonce before this one was written",
		    (unsigned) ks->id);
	}
	return HSM_NO_ERROR;
    }
    if (ks->persisted) {
	return hsm_fail(HSM_KEY_STORE_ERROR, "key store %u is no longer in "
		"the manifest of %s", (unsigned) ks->id, ks->device->dir);
    }
    if ((s = hsm_manifest_add_store(next, ks->id)) == NULL) {
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory for key store %u",
		(unsigned) ks->id);
    }
    s->nonce = ks->nonce;
    s->maxUpdates = ks->maxUpdates;
    return HSM_NO_ERROR;
}

hsm_err_t
hsm_keystore_commit(HsmKeyStore *ks, HsmManifest *next,
	const HsmNvmWrite *writes, size_t nWrites)
{
    HsmManStore *s;
    hsm_err_t err;
    int move = 1;

    if ((err = hsm_keystore_persist(ks, next)) != HSM_NO_ERROR) {
	hsm_manifest_free(next);
	return err;
    }
    s = hsm_manifest_store(next, ks->id);
    if (s->maxUpdates != 0 && s->updatesUsed >= s->maxUpdates) {
	move = 0;
    } else {
	s->updatesUsed++;
    }
    if ((err = hsm_device_commit(ks->device, next, writes, nWrites, move))
	    != HSM_NO_ERROR) {
	return err;
    }
    ks->persisted = 1;
    if (!move) {
	return hsm_fail(HSM_KEY_STORE_COUNTER, "key store %u has used all %u "
		"monotonic counter updates it was created with: the update "
		"is written, but not rollback-protected", (unsigned) ks->id,
		(unsigned) s->maxUpdates);
    }
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * SyncGroup --
 *	Brings a cached group up to the version the NVM now has (another
 *	service or process wrote it since it was read), NVM lock held: the
 *	NVM's keys, except those this service changed (its version stays)
 *	or deleted (they stay deleted).  Its pending changes stay pending.
 *	HSM_ID_CONFLICT if a key this service created has an id the NVM
 *	gives to another key; nothing changes on failure.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
SyncGroup(HsmKeyStore *ks, HsmGroup *g)
{
    HsmDevice *dev = ks->device;
    const HsmManStore *s = hsm_manifest_store(dev->manifest, ks->id);
    const HsmManGroup *mg = s ? hsm_manifest_group(s, g->number) : NULL;
    HsmKey **disk = NULL, **merged = NULL;
    size_t nDisk = 0, nMerged = 0, i, j, bytes = GROUP_OVERHEAD;
    hsm_err_t err = HSM_NO_ERROR;

    if (g->transient || (mg ? mg->version : 0) == g->version) {
	return HSM_NO_ERROR;
    }
    if (mg != NULL && (err = ReadGroup(ks, mg, &disk, &nDisk))
	    != HSM_NO_ERROR) {
	return err;
    }
    if ((merged = calloc(nDisk + g->nKeys + 1, sizeof(HsmKey *))) == NULL) {
	err = hsm_fail(HSM_OUT_OF_MEMORY, "no memory to read key group %u",
		g->number);
	goto done;
    }
    for (i = 0; i < nDisk; i++) {
	HsmKey *other = TableFind(ks, disk[i]->id);

	if (IdSetHas(&g->created, disk[i]->id)
		|| (other != NULL && other->group != g->number)) {
	    err = hsm_fail(HSM_ID_CONFLICT, "key 0x%08x of this service has "
		    "the id another service or process gave a key of key "
		    "group %u of key store %u", (unsigned) disk[i]->id,
		    g->number, (unsigned) ks->id);
	    goto done;
	}
    }
    /* This service's changed keys, then the NVM's others. */
    for (i = 0; i < g->nKeys; i++) {
	if (IdSetHas(&g->changed, g->keys[i]->id)) {
	    merged[nMerged++] = g->keys[i];
	    bytes += KeyBytes(g->keys[i]);
	}
    }
    for (i = 0; i < nDisk; i++) {
	if (!IdSetHas(&g->changed, disk[i]->id)
		&& !IdSetHas(&g->deleted, disk[i]->id)) {
	    merged[nMerged++] = disk[i];
	    bytes += KeyBytes(disk[i]);
	}
    }
    if (bytes > HSM_GROUP_MAX_BYTES) {
	err = hsm_fail(HSM_OUT_OF_MEMORY, "key group %u of key store %u is "
		"full: with the keys others wrote to it, its key material "
		"takes %lu bytes, at most %d are allowed", g->number,
		(unsigned) ks->id, (unsigned long) bytes, HSM_GROUP_MAX_BYTES);
	goto done;
    }

    /* Install: the old image goes, except the changed keys. */
    for (i = 0; i < g->nKeys; i++) {
	TableRemove(ks, g->keys[i]->id);
	if (!IdSetHas(&g->changed, g->keys[i]->id)) {
	    hsm_keystore_free_key(g->keys[i]);
	}
    }
    free(g->keys);
    g->keys = merged;
    g->nKeys = g->room = nMerged;
    g->bytes = bytes;
    merged = NULL;
    for (i = 0; i < g->nKeys; i++) {
	g->keys[i]->group = g->number;
	TableAdd(ks, g->keys[i]);	/* cannot fail: the table had room */
	for (j = 0; j < nDisk; j++) {
	    if (disk[j] == g->keys[i]) {
		disk[j] = NULL;
	    }
	}
    }
    g->version = mg ? mg->version : 0;

  done:
    free(merged);
    if (disk != NULL) {
	FreeKeyList(disk, nDisk);
    }
    return err;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_keystore_write_group --
 *	The strict write of a group: first brought up to the NVM's version
 *	(SyncGroup: keys this service created or updated win, keys it
 *	deleted go, the others are the NVM's), then written through the
 *	commit protocol.  Transient groups are never written.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_keystore_write_group(HsmKeyStore *ks, HsmGroup *g)
{
    HsmDevice *dev = ks->device;
    const HsmManStore *s;
    uint32_t *ids = NULL;
    HsmManifest *next;
    HsmNvmWrite w;
    HsmBuf b;
    hsm_err_t err;
    size_t i;

    if (g->transient) {
	return HSM_NO_ERROR;
    }
    g->pinSerial = dev->opSerial;
    if ((err = hsm_device_nvm_begin(dev)) != HSM_NO_ERROR) {
	return err;
    }
    if ((s = hsm_manifest_store(dev->manifest, ks->id)) != NULL
	    && s->nonce != ks->nonce) {
	return hsm_fail(HSM_KEY_STORE_CONFLICT, "key store %u was created "
		"by another service or process with another authentication "
		"nonce before this one was written", (unsigned) ks->id);
    }
    if ((err = SyncGroup(ks, g)) != HSM_NO_ERROR) {
	return err;
    }
    /* Keys created here must not have been given to another group. */
    for (i = 0; s != NULL && i < g->created.n; i++) {
	int in = hsm_manifest_key_group(s, g->created.ids[i]);

	if (in >= 0 && in != g->number) {
	    return hsm_fail(HSM_ID_CONFLICT, "key 0x%08x created by this "
		    "service is in key group %d of key store %u in the NVM",
		    (unsigned) g->created.ids[i], in, (unsigned) ks->id);
	}
    }
    if ((ids = calloc(g->nKeys + 1, sizeof(uint32_t))) == NULL
	    || (next = hsm_manifest_copy(dev->manifest)) == NULL) {
	free(ids);
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory to write key group %u",
		g->number);
    }
    for (i = 0; i < g->nKeys; i++) {
	ids[i] = g->keys[i]->id;
    }
    if ((err = hsm_keystore_persist(ks, next)) != HSM_NO_ERROR
	    || hsm_manifest_set_group(hsm_manifest_store(next, ks->id),
		    g->number, ids, (uint32_t) g->nKeys) != 0) {
	free(ids);
	hsm_manifest_free(next);
	return err ? err : hsm_fail(HSM_OUT_OF_MEMORY, "no memory to write "
		"key group %u", g->number);
    }
    free(ids);
    hsm_buf_init(&b, 1);
    SerializeKeys(g->keys, g->nKeys, &b);
    if (b.failed) {
	hsm_manifest_free(next);
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory to write key group %u",
		g->number);
    }
    memset(&w, 0, sizeof(w));
    w.kind = HSM_OBJ_GROUP;
    w.storeId = ks->id;
    w.objId = g->number;
    w.data = g->nKeys > 0 ? b.data : NULL;
    w.len = b.len;
    err = hsm_keystore_commit(ks, next, &w, 1);
    hsm_buf_free(&b);
    if (err != HSM_NO_ERROR && err != HSM_KEY_STORE_COUNTER) {
	return err;
    }
    g->version = g->nKeys > 0 ? dev->generation : 0;
    g->dirty = 0;
    IdSetFree(&g->changed);
    IdSetFree(&g->created);
    IdSetFree(&g->deleted);
    /* Other services' images of the group are now out of date. */
    hsm_keystore_invalidate(dev);
    return err;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_keystore_invalidate --
 *	After the NVM changed (a commit of this process, or of another one
 *	seen by a refresh): each cached group whose NVM version is no longer
 *	the one it holds is dropped if clean and unlocked, else brought up
 *	to date (SyncGroup; a failure leaves it as it is, to be reported by
 *	its next write).  Groups the current operation uses are left to it.
 *
 *----------------------------------------------------------------------
 */

void
hsm_keystore_invalidate(HsmDevice *dev)
{
    HsmGroup *g, *next;

    for (g = dev->cacheHead; g != NULL; g = next) {
	const HsmManStore *s = hsm_manifest_store(dev->manifest, g->ks->id);
	const HsmManGroup *mg = s ? hsm_manifest_group(s, g->number) : NULL;

	next = g->cacheNext;
	if (g->pinSerial == dev->opSerial
		|| (mg ? mg->version : 0) == g->version) {
	    continue;
	}
	if (!g->dirty && !g->locked) {
	    FreeGroup(g->ks, g);
	} else if (SyncGroup(g->ks, g) != HSM_NO_ERROR) {
	    hsm_clear_error();
	}
    }
}

/* ------------------------------------------------------------------ */
/* Key store services                                                   */
/* ------------------------------------------------------------------ */

/*
 *----------------------------------------------------------------------
 *
 * FreeKeyStore --
 *	Closing a key store service: its transient keys and unwritten
 *	changes are gone (device lock held by the close).
 *
 *----------------------------------------------------------------------
 */

static void
FreeKeyStore(void *priv)
{
    HsmKeyStore *ks = priv, **pp;
    int i;

    if (ks == NULL) {
	return;
    }
    for (i = 0; i <= (int) HSM_MAX_KEY_GROUP; i++) {
	if (ks->groups[i] != NULL) {
	    FreeGroup(ks, ks->groups[i]);
	}
    }
    for (pp = &ks->device->stores; *pp != NULL; pp = &(*pp)->next) {
	if (*pp == ks) {
	    *pp = ks->next;
	    break;
	}
    }
    free(ks->table);
    free(ks);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_keystore_open --
 *	Opens a key store service on store id of the session's HSM.  With
 *	create, the store must not exist (it is written with the first strict
 *	operation); without, it must exist and nonce must be its nonce;
 *	openOrCreate (firmware stores) creates it if missing.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_keystore_open(hsm_hdl_t session, uint32_t id, uint32_t nonce,
	uint16_t maxUpdates, int create, int openOrCreate, hsm_hdl_t *handle)
{
    HsmOp op;
    HsmDevice *dev;
    HsmKeyStore *ks;
    const HsmManStore *s;
    hsm_err_t err;

    if ((err = hsm_op_begin(session, HSM_KIND_SESSION, &op)) != HSM_NO_ERROR) {
	return err;
    }
    dev = op.obj->device;
    if ((err = hsm_device_nvm_begin(dev)) != HSM_NO_ERROR) {
	return hsm_op_end(&op, err);
    }
    s = hsm_manifest_store(dev->manifest, id);
    if (create && s != NULL) {
	return hsm_op_end(&op, hsm_fail(HSM_KEY_STORE_CONFLICT, "key store "
		"%u already exists in %s", (unsigned) id, dev->dir));
    }
    if (!create && !openOrCreate && s == NULL) {
	return hsm_op_end(&op, hsm_fail(HSM_UNKNOWN_KEY_STORE, "key store %u "
		"does not exist in %s (a created key store exists once a "
		"strict operation wrote it) and the CREATE flag is not set",
		(unsigned) id, dev->dir));
    }
    if (s != NULL && CRYPTO_memcmp(&s->nonce, &nonce, sizeof(nonce)) != 0) {
	return hsm_op_end(&op, hsm_fail(HSM_KEY_STORE_AUTH, "key store %u in "
		"%s: wrong authentication nonce", (unsigned) id, dev->dir));
    }
    if ((ks = calloc(1, sizeof(*ks))) == NULL) {
	return hsm_op_end(&op, hsm_fail(HSM_OUT_OF_MEMORY, "no memory for "
		"key store %u", (unsigned) id));
    }
    ks->device = dev;
    ks->id = id;
    ks->nonce = nonce;
    ks->maxUpdates = s ? s->maxUpdates : maxUpdates;
    ks->persisted = s != NULL;
    ks->next = dev->stores;
    dev->stores = ks;
    err = hsm_object_open_ks(session, HSM_KIND_SESSION, HSM_KIND_KEY_STORE,
	    ks, ks, FreeKeyStore, handle);
    return hsm_op_end(&op, err);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_open_key_store_service, hsm_close_key_store_service --
 *	The public key store service (seed 6.3).
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_open_key_store_service(hsm_hdl_t session_hdl,
	open_svc_key_store_args_t *args, hsm_hdl_t *key_store_hdl)
{
    const unsigned known = HSM_SVC_KEY_STORE_FLAGS_CREATE
	    | HSM_SVC_KEY_STORE_FLAGS_UPDATE | HSM_SVC_KEY_STORE_FLAGS_DELETE;

    hsm_clear_error();
    if (key_store_hdl != NULL) {
	*key_store_hdl = 0;
    }
    if (args == NULL || key_store_hdl == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "open_key_store_service: %s is "
		"NULL", args == NULL ? "args" : "key_store_hdl");
    }
    if (args->flags & (HSM_SVC_KEY_STORE_FLAGS_UPDATE
	    | HSM_SVC_KEY_STORE_FLAGS_DELETE)) {
	return hsm_fail(HSM_CMD_NOT_SUPPORTED, "open_key_store_service: the "
		"%s flag is not supported (seed 6.3: \"not supported\")",
		(args->flags & HSM_SVC_KEY_STORE_FLAGS_UPDATE)
		? "UPDATE" : "DELETE");
    }
    if (args->flags & ~known) {
	return hsm_fail(HSM_INVALID_PARAM, "open_key_store_service: flags "
		"0x%02x has unknown bits", (unsigned) args->flags);
    }
    if (args->signed_message != NULL || args->signed_msg_size != 0) {
	return hsm_fail(HSM_CMD_NOT_SUPPORTED, "open_key_store_service: key "
		"store reprovisioning with a signed message is not supported "
		"by this engine");
    }
    if (args->key_store_identifier >= HSM_FW_KEY_STORE_BASE) {
	return hsm_fail(HSM_INVALID_PARAM, "open_key_store_service: key store "
		"ids from 0x%08x up belong to the HSM firmware (got 0x%08x)",
		(unsigned) HSM_FW_KEY_STORE_BASE,
		(unsigned) args->key_store_identifier);
    }
    return hsm_keystore_open(session_hdl, args->key_store_identifier,
	    args->authentication_nonce, args->max_updates_number,
	    (args->flags & HSM_SVC_KEY_STORE_FLAGS_CREATE) != 0, 0,
	    key_store_hdl);
}

hsm_err_t
hsm_close_key_store_service(hsm_hdl_t key_store_hdl)
{
    return hsm_object_close(key_store_hdl, HSM_KIND_KEY_STORE);
}
