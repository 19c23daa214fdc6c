/*
 * hsm_core.h --
 *
 *	Internals shared by the core modules of the engine: objects
 *	(hsm_object.c), devices and their NVM (hsm_device.c), key stores and
 *	the key group cache (hsm_keystore.c), key management
 *	(hsm_keymgmt.c), data storage, root KEK and get_info (hsm_storage.c)
 *	and the firmware interface (hsm_fw.c).  The cryptographic services
 *	need only hsm_int.h; nothing here is for them.
 *
 *	Locking, in the order locks are taken:
 *	  1. the device lock (hsm_device_lock): a mutex per device, recursive
 *	     per thread, held from hsm_op_begin to hsm_op_end;
 *	  2. the NVM lock (hsm_device_nvm_begin): the lock file of the state
 *	     directory, taken under the device lock when an operation first
 *	     needs the NVM, and released with the outermost device lock;
 *	  3. the global mutex (hsm_global_lock): the handle table, the device
 *	     registry and device reference counts.  Never held while waiting
 *	     for a device lock.
 */

#ifndef SPPS_HSM_CORE_H
#define SPPS_HSM_CORE_H

#include "hsm_int.h"
#include "hsm_fw.h"
#include "hsm_spps.h"

/*
 * Thread-local storage.  plat.h's PLAT_THREAD_LOCAL is MSVC's
 * __declspec(thread) on Windows, which mingw's gcc ignores (a warning, an
 * error with -Werror); gcc and clang take __thread everywhere.
 */
#if defined(_WIN32) && defined(__GNUC__)
#define HSM_THREAD_LOCAL __thread
#else
#define HSM_THREAD_LOCAL PLAT_THREAD_LOCAL
#endif

/* ------------------------------------------------------------------ */
/* Errors (hsm_error.c)                                                 */
/* ------------------------------------------------------------------ */

/* hsm_error_default -- if err is an error and the thread's detail is
 * empty, the detail becomes the code's sentence. */
void hsm_error_default(hsm_err_t err);

/* hsm_fail_wrap -- like hsm_fail, but the current detail is appended
 * after ": " (for adding where to what a helper said). */
hsm_err_t hsm_fail_wrap(hsm_err_t err, const char *fmt, ...)
#ifdef __GNUC__
	__attribute__((format(printf, 2, 3)))
#endif
	;

/* ------------------------------------------------------------------ */
/* Global mutex (hsm_object.c)                                          */
/* ------------------------------------------------------------------ */

void hsm_global_lock(void);
void hsm_global_unlock(void);

/* ------------------------------------------------------------------ */
/* Byte buffers: writing and bounds-checked reading                     */
/* ------------------------------------------------------------------ */

typedef struct HsmBuf {
    uint8_t *data;
    size_t len, room;
    int failed;			/* out of memory: data is unusable */
    int secret;			/* cleanse on growth and free */
} HsmBuf;

void hsm_buf_init(HsmBuf *b, int secret);
void hsm_buf_free(HsmBuf *b);
void hsm_buf_bytes(HsmBuf *b, const void *p, size_t n);
void hsm_buf_u8(HsmBuf *b, uint8_t v);
void hsm_buf_u16(HsmBuf *b, uint16_t v);
void hsm_buf_u32(HsmBuf *b, uint32_t v);
void hsm_buf_u64(HsmBuf *b, uint64_t v);

typedef struct HsmReader {
    const uint8_t *p;
    size_t left;
    int bad;			/* read past the end: values are 0 */
} HsmReader;

void hsm_rd_init(HsmReader *r, const uint8_t *p, size_t len);
uint8_t hsm_rd_u8(HsmReader *r);
uint16_t hsm_rd_u16(HsmReader *r);
uint32_t hsm_rd_u32(HsmReader *r);
uint64_t hsm_rd_u64(HsmReader *r);
const uint8_t *hsm_rd_bytes(HsmReader *r, size_t n);

/* ------------------------------------------------------------------ */
/* The manifest: what the NVM holds (hsm_device.c)                      */
/* ------------------------------------------------------------------ */

/* Object kinds, as written in file headers. */
enum {
    HSM_OBJ_MANIFEST = 1,
    HSM_OBJ_GROUP = 2,
    HSM_OBJ_DATA = 3,
    HSM_OBJ_BLOB = 4
};

#define HSM_BLOB_NAME_MAX 64

typedef struct HsmManGroup {
    uint16_t number;
    uint64_t version;
    uint32_t nKeys;
    uint32_t *keyIds;
} HsmManGroup;

typedef struct HsmManData {
    uint16_t id;
    uint64_t version;
    uint32_t size;
} HsmManData;

typedef struct HsmManStore {
    uint32_t id;
    uint32_t nonce;
    uint16_t maxUpdates;	/* 0: no limit */
    uint32_t updatesUsed;	/* counter updates this store consumed */
    size_t nGroups;
    HsmManGroup *groups;
    size_t nData;
    HsmManData *data;
} HsmManStore;

typedef struct HsmManBlob {
    char name[HSM_BLOB_NAME_MAX + 1];
    uint64_t version;
    uint32_t size;
} HsmManBlob;

typedef struct HsmManifest {
    uint64_t generation;	/* one more at every commit */
    uint64_t writtenAt;		/* the counter value this commit set */
    uint16_t lifecycle;
    int hasOwner;
    uint8_t owner[64];		/* owner P-256 public key x || y */
    size_t nStores;
    HsmManStore *stores;
    size_t nBlobs;
    HsmManBlob *blobs;
} HsmManifest;

HsmManifest *hsm_manifest_copy(const HsmManifest *m);
void hsm_manifest_free(HsmManifest *m);
HsmManStore *hsm_manifest_store(const HsmManifest *m, uint32_t id);
HsmManStore *hsm_manifest_add_store(HsmManifest *m, uint32_t id);
HsmManGroup *hsm_manifest_group(const HsmManStore *s, uint16_t number);
/* Sets (adds or replaces) a group entry and its key ids; nKeys 0 removes. */
int hsm_manifest_set_group(HsmManStore *s, uint16_t number,
	const uint32_t *ids, uint32_t nKeys);
/* The group a key id of a store is in, or -1. */
int hsm_manifest_key_group(const HsmManStore *s, uint32_t keyId);
HsmManData *hsm_manifest_data(const HsmManStore *s, uint16_t id);
int hsm_manifest_set_data(HsmManStore *s, uint16_t id, uint32_t size);
HsmManBlob *hsm_manifest_blob(const HsmManifest *m, const char *name);
int hsm_manifest_set_blob(HsmManifest *m, const char *name, uint32_t size);
void hsm_manifest_remove_blob(HsmManifest *m, const char *name);

/* ------------------------------------------------------------------ */
/* Devices (hsm_device.c)                                               */
/* ------------------------------------------------------------------ */

typedef struct HsmGroup HsmGroup;

struct HsmDevice {
    char *dir;			/* canonical state directory */
    int refs;			/* under the global mutex */
    HsmDevice *next;		/* registry */
    PlatMutex mutex;

    /* The fuse. */
    uint8_t *secret;		/* 32 bytes, secure heap */
    uint8_t chipId[8];
    int sealed;			/* fuse sealed under a passphrase */

    /* Keys derived from the secret. */
    uint8_t *nvmKey;		/* AES-256-GCM of every NVM object */
    uint8_t *otpKey;		/* HMAC-SHA-384 of the otp file */

    /* The view of the NVM: valid while nvmValid. */
    HsmManifest *manifest;
    uint64_t counter;		/* otp counter last seen */
    uint64_t generation;	/* otp generation last seen */
    int nvmValid;		/* 0: re-read everything at next access */

    /* Locks. */
    int lockDepth;		/* device lock recursion (owner thread) */
    PlatLock fileLock;
    int fileLocked;

    /* The key group cache ("HSM local memory"). */
    HsmGroup *cacheHead;	/* most recently used first */
    int cacheCount;
    uint64_t tick;		/* use clock for the cache */
    uint64_t opSerial;		/* outermost operation number */

    /* Key stores open on this device. */
    HsmKeyStore *stores;

    /* The random generator. */
    EVP_RAND_CTX *drbg;
    unsigned long drbgForkGen;	/* plat_fork_generation() when seeded */
    char rngError[200];
};

/* The cache holds at most this many persistent key groups. */
#define HSM_CACHE_GROUPS 3

/* Opens (or finds) the device of a state directory: one more reference. */
hsm_err_t hsm_device_acquire(const char *dir, HsmDevice **device);
/* One reference less; the last one frees the device.  Global mutex not held. */
void hsm_device_release(HsmDevice *device);
/* Reference counting with the global mutex held by the caller. */
void hsm_device_ref_locked(HsmDevice *device);
int hsm_device_unref_locked(HsmDevice *device);	/* 1: caller must destroy */
void hsm_device_destroy(HsmDevice *device);

/* The device lock (recursive per thread). */
hsm_err_t hsm_device_lock(HsmDevice *device);
void hsm_device_unlock(HsmDevice *device);

/*
 * hsm_device_nvm_begin --
 *	Makes sure this operation holds the NVM lock (the lock file) and has
 *	a view of the NVM as the last commit of any process left it.  The
 *	lock is released when the outermost device lock is.
 */
hsm_err_t hsm_device_nvm_begin(HsmDevice *device);

/*
 * hsm_device_commit --
 *	Runs the NVM commit protocol (docs/ARCHITECTURE.md): writes each
 *	object of writes as a new file, then next (a modified copy of the
 *	device's manifest) as the manifest, then the otp, then removes the
 *	superseded files.  The counter moves by one if moveCounter.  The
 *	manifest entries of written objects get the new version.  next is
 *	taken over (freed or installed) in every case.  NVM lock held.
 */
typedef struct HsmNvmWrite {
    int kind;			/* HSM_OBJ_GROUP, HSM_OBJ_DATA, HSM_OBJ_BLOB */
    uint32_t storeId;
    uint32_t objId;		/* group number or data id */
    const char *name;		/* blob name */
    const uint8_t *data;	/* NULL: the object is removed */
    size_t len;
} HsmNvmWrite;

hsm_err_t hsm_device_commit(HsmDevice *device, HsmManifest *next,
	const HsmNvmWrite *writes, size_t nWrites, int moveCounter);

/* Reads and authenticates an object file of the manifest's version;
 * *data is from the secure heap (free with hsm_secure_free(data, len)). */
hsm_err_t hsm_device_read_object(HsmDevice *device, int kind,
	uint32_t storeId, uint32_t objId, const char *name, uint64_t version,
	uint8_t **data, size_t *len);

/* The file name of an object, relative to the state directory. */
void hsm_device_object_path(char *out, size_t outLen, int kind,
	uint32_t storeId, uint32_t objId, const char *name, uint64_t version);

/* HKDF of the device secret with a label. */
int hsm_device_derive(HsmDevice *device, const char *label, uint8_t *out,
	size_t len);

/* The fault spec "rng-fail" of SPPS_FAULT is set. */
int hsm_device_fault(const char *what);

/* ------------------------------------------------------------------ */
/* Objects (hsm_object.c)                                               */
/* ------------------------------------------------------------------ */

/* hsm_object_open with the key store of the new object given (key store
 * service objects); NULL inherits the parent's. */
hsm_err_t hsm_object_open_ks(hsm_hdl_t parent, HsmKind parentKind,
	HsmKind kind, HsmKeyStore *keyStore, void *priv,
	void (*freePriv)(void *priv), hsm_hdl_t *handle);

/* The name of an object kind ("key store service"). */
const char *hsm_kind_name(HsmKind kind);

/* ------------------------------------------------------------------ */
/* Key stores and groups (hsm_keystore.c)                               */
/* ------------------------------------------------------------------ */

/* A group's serialized key material may not exceed this many bytes. */
#define HSM_GROUP_MAX_BYTES 16384

typedef struct HsmIdSet {
    uint32_t *ids;
    size_t n, room;
} HsmIdSet;

struct HsmGroup {
    HsmKeyStore *ks;
    uint16_t number;
    int transient;		/* holds transient keys: memory only */
    HsmKey **keys;
    size_t nKeys, room;
    size_t bytes;		/* serialized size */
    uint64_t version;		/* NVM version it was read from, 0 if none */
    int dirty;			/* changes not yet written */
    HsmIdSet changed;		/* keys created or updated since written */
    HsmIdSet created;		/* of those, keys created here */
    HsmIdSet deleted;		/* keys deleted since written */
    int locked;			/* CACHE_LOCKDOWN */
    int cached;			/* in the device cache list */
    uint64_t pinSerial;		/* used by the operation opSerial */
    HsmGroup *cachePrev, *cacheNext;
};

struct HsmKeyStore {
    HsmDevice *device;
    uint32_t id;
    uint32_t nonce;
    uint16_t maxUpdates;
    int persisted;		/* known to the manifest */
    HsmGroup *groups[HSM_MAX_KEY_GROUP + 1];
    HsmKey **table;		/* key id -> key, open addressing */
    size_t tableSize, tableUsed;
    HsmKeyStore *next;		/* the device's list */
};

/* Finds a key (loading its group if it is not cached). */
hsm_err_t hsm_keystore_find(HsmKeyStore *ks, uint32_t keyId, HsmKey **key,
	HsmGroup **group);
/* The group, cached (read from the NVM or made empty if create). */
hsm_err_t hsm_keystore_group(HsmKeyStore *ks, uint16_t number, int create,
	HsmGroup **group);
/* The group for a new key with this key info (transient or not). */
hsm_err_t hsm_keystore_group_for(HsmKeyStore *ks, uint16_t number,
	hsm_key_info_t info, HsmGroup **group);
/* Adds a new key (taking it over) or replaces an existing one. */
hsm_err_t hsm_keystore_put(HsmKeyStore *ks, HsmGroup *group, HsmKey *key,
	int created);
/* Deletes a key from its group. */
void hsm_keystore_delete(HsmKeyStore *ks, HsmGroup *group, uint32_t keyId);
/* A new random key id, unique in the store. */
hsm_err_t hsm_keystore_new_id(HsmKeyStore *ks, uint32_t *id);
/* Writes a group to the NVM (strict operation); may return the warning
 * HSM_KEY_STORE_COUNTER. */
hsm_err_t hsm_keystore_write_group(HsmKeyStore *ks, HsmGroup *group);
/* Commits next for the key store: counts the update against the store's
 * max_updates_number; HSM_KEY_STORE_COUNTER if it was used up. */
hsm_err_t hsm_keystore_commit(HsmKeyStore *ks, HsmManifest *next,
	const HsmNvmWrite *writes, size_t nWrites);
/* Adds the key store's entry to next if it is not there yet. */
hsm_err_t hsm_keystore_persist(HsmKeyStore *ks, HsmManifest *next);
/* Builds the EVP_PKEY of an EC key if not built yet. */
hsm_err_t hsm_keystore_pkey(HsmKey *key);
void hsm_keystore_free_key(HsmKey *key);
HsmKey *hsm_keystore_new_key(uint32_t id, hsm_key_type_t type,
	hsm_key_group_t group, hsm_key_info_t info, const uint8_t *secret,
	size_t secretLen);
/* Drops cached groups the NVM now has newer versions of (clean ones). */
void hsm_keystore_invalidate(HsmDevice *device);

/* Opens a key store service on a store (public and firmware stores). */
hsm_err_t hsm_keystore_open(hsm_hdl_t session, uint32_t id, uint32_t nonce,
	uint16_t maxUpdates, int create, int openOrCreate, hsm_hdl_t *handle);

/* ------------------------------------------------------------------ */
/* Root KEKs (hsm_storage.c)                                            */
/* ------------------------------------------------------------------ */

/* The common (public) or part-unique root KEK of a device, 32 bytes into
 * out; 0 or -1. */
int hsm_root_kek(HsmDevice *device, int common, uint8_t *out);

#endif /* SPPS_HSM_CORE_H */
