/*
 * hsm_object.c --
 *
 *	Handles and the objects they name: the process-wide handle table
 *	(O(1) lookup, values never reused), the object tree (closing a handle
 *	closes everything opened under it), sessions, and the operation
 *	bracket hsm_op_begin / hsm_op_end every API function goes through.
 *
 *	An object that a thread is using (between hsm_op_begin and hsm_op_end)
 *	is pinned: a close marks it closed and takes it out of the table at
 *	once, but its memory is freed only when the last pin goes, so a
 *	thread waiting for the device lock finds "closed", never freed memory.
 */

#include "hsm_core.h"

#include <stdlib.h>
#include <string.h>

typedef struct ObjEntry {
    HsmObject obj;		/* first: an HsmObject * is an ObjEntry * */
    struct ObjEntry *hashNext;
    struct ObjEntry *firstChild, *nextSibling, *prevSibling;
    int pins;			/* threads using it (global mutex) */
    int closed;			/* set under the device lock */
} ObjEntry;

static PlatMutex globalMutex = PLAT_MUTEX_INITIALIZER;

/* The handle table: chained hash on the handle value (global mutex). */
static ObjEntry **buckets;
static size_t nBuckets, nEntries;
static hsm_hdl_t nextHandle = 1;

/* The state directory the thread's next hsm_open_session opens. */
static HSM_THREAD_LOCAL char threadDir[1024];

void
hsm_global_lock(void)
{
    plat_mutex_lock(&globalMutex);
}

void
hsm_global_unlock(void)
{
    plat_mutex_unlock(&globalMutex);
}

const char *
hsm_kind_name(HsmKind kind)
{
    switch (kind) {
    case HSM_KIND_SESSION: return "session";
    case HSM_KIND_KEY_STORE: return "key store service";
    case HSM_KIND_KEY_MANAGEMENT: return "key management service";
    case HSM_KIND_CIPHER: return "cipher service";
    case HSM_KIND_SIGN_GEN: return "signature generation service";
    case HSM_KIND_SIGN_VER: return "signature verification service";
    case HSM_KIND_RNG: return "rng service";
    case HSM_KIND_HASH: return "hash service";
    case HSM_KIND_MAC: return "mac service";
    case HSM_KIND_DATA_STORAGE: return "data storage service";
    }
    return "object";
}

/*
 *----------------------------------------------------------------------
 *
 * Lookup, TableInsert, TableRemove --
 *	The handle table (global mutex held).
 *
 *----------------------------------------------------------------------
 */

static ObjEntry *
Lookup(hsm_hdl_t handle)
{
    ObjEntry *e;

    if (nBuckets == 0) {
	return NULL;
    }
    for (e = buckets[handle & (nBuckets - 1)]; e != NULL; e = e->hashNext) {
	if (e->obj.handle == handle) {
	    return e;
	}
    }
    return NULL;
}

static int
TableInsert(ObjEntry *e)
{
    size_t i;

    if (nEntries + 1 > nBuckets) {
	size_t newSize = nBuckets ? 2 * nBuckets : 64;
	ObjEntry **newBuckets = calloc(newSize, sizeof(ObjEntry *));

	if (newBuckets == NULL) {
	    return -1;
	}
	for (i = 0; i < nBuckets; i++) {
	    ObjEntry *p = buckets[i], *next;

	    for (; p != NULL; p = next) {
		next = p->hashNext;
		p->hashNext = newBuckets[p->obj.handle & (newSize - 1)];
		newBuckets[p->obj.handle & (newSize - 1)] = p;
	    }
	}
	free(buckets);
	buckets = newBuckets;
	nBuckets = newSize;
    }
    i = e->obj.handle & (nBuckets - 1);
    e->hashNext = buckets[i];
    buckets[i] = e;
    nEntries++;
    return 0;
}

static void
TableRemove(ObjEntry *e)
{
    ObjEntry **pp;

    if (nBuckets == 0) {
	return;
    }
    for (pp = &buckets[e->obj.handle & (nBuckets - 1)]; *pp != NULL;
	    pp = &(*pp)->hashNext) {
	if (*pp == e) {
	    *pp = e->hashNext;
	    nEntries--;
	    return;
	}
    }
}

/*
 *----------------------------------------------------------------------
 *
 * Pin, Unpin --
 *	Find an open object of a kind and keep it (and its device) from
 *	being freed while this thread uses it; and let it go.  Unpin frees
 *	a closed object whose last pin it was, and the device whose last
 *	reference it held.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
Pin(hsm_hdl_t handle, HsmKind kind, ObjEntry **entry)
{
    ObjEntry *e;

    hsm_global_lock();
    e = Lookup(handle);
    if (e == NULL || (kind != 0 && e->obj.kind != kind)) {
	hsm_global_unlock();
	*entry = NULL;
	if (e == NULL) {
	    return hsm_fail(HSM_UNKNOWN_HANDLE, "handle %u is not open%s%s",
		    (unsigned) handle, kind ? ": expected a " : "",
		    kind ? hsm_kind_name(kind) : "");
	}
	return hsm_fail(HSM_UNKNOWN_HANDLE, "handle %u is a %s, not a %s",
		(unsigned) handle, hsm_kind_name(e->obj.kind),
		hsm_kind_name(kind));
    }
    e->pins++;
    hsm_device_ref_locked(e->obj.device);
    hsm_global_unlock();
    *entry = e;
    return HSM_NO_ERROR;
}

static void
Unpin(ObjEntry *e)
{
    HsmDevice *device = e->obj.device;
    int freeEntry, destroy;

    hsm_global_lock();
    freeEntry = --e->pins == 0 && e->closed;
    destroy = hsm_device_unref_locked(device);
    hsm_global_unlock();
    if (freeEntry) {
	free(e);
    }
    if (destroy) {
	hsm_device_destroy(device);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_op_begin, hsm_op_end --
 *	The operation bracket (hsm_int.h): find the object, lock its device;
 *	unlock, and record the thread's error detail.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_op_begin(hsm_hdl_t handle, HsmKind kind, HsmOp *op)
{
    ObjEntry *e;
    hsm_err_t err;

    hsm_clear_error();
    op->obj = NULL;
    if ((err = Pin(handle, kind, &e)) != HSM_NO_ERROR) {
	return err;
    }
    if ((err = hsm_device_lock(e->obj.device)) != HSM_NO_ERROR) {
	Unpin(e);
	return err;
    }
    if (e->closed) {
	hsm_device_unlock(e->obj.device);
	Unpin(e);
	return hsm_fail(HSM_UNKNOWN_HANDLE, "handle %u was closed",
		(unsigned) handle);
    }
    op->obj = &e->obj;
    return HSM_NO_ERROR;
}

hsm_err_t
hsm_op_end(HsmOp *op, hsm_err_t err)
{
    if (op != NULL && op->obj != NULL) {
	ObjEntry *e = (ObjEntry *) op->obj;

	op->obj = NULL;
	hsm_device_unlock(e->obj.device);
	Unpin(e);
    }
    if (err == HSM_NO_ERROR) {
	hsm_clear_error();
    } else {
	hsm_error_default(err);
    }
    return err;
}

/*
 *----------------------------------------------------------------------
 *
 * NewEntry --
 *	A new object with a fresh handle, in the table (global mutex held).
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
NewEntry(HsmKind kind, HsmDevice *device, HsmKeyStore *keyStore,
	ObjEntry *parent, void *priv, void (*freePriv)(void *),
	ObjEntry **entry)
{
    ObjEntry *e;

    *entry = NULL;
    if (nextHandle == 0) {
	return hsm_fail(HSM_OUT_OF_MEMORY, "no handle values left in this "
		"process (4294967295 handles were opened)");
    }
    if ((e = calloc(1, sizeof(*e))) == NULL) {
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory for a %s",
		hsm_kind_name(kind));
    }
    e->obj.handle = nextHandle;
    e->obj.kind = kind;
    e->obj.device = device;
    e->obj.keyStore = keyStore;
    e->obj.parent = parent ? &parent->obj : NULL;
    e->obj.priv = priv;
    e->obj.freePriv = freePriv;
    if (TableInsert(e) != 0) {
	free(e);
	return hsm_fail(HSM_OUT_OF_MEMORY, "no memory for a %s",
		hsm_kind_name(kind));
    }
    nextHandle++;
    if (parent != NULL) {
	e->nextSibling = parent->firstChild;
	if (parent->firstChild) {
	    parent->firstChild->prevSibling = e;
	}
	parent->firstChild = e;
    }
    *entry = e;
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_object_open, hsm_object_open_ks --
 *	Creates an object under an open parent of parentKind; see hsm_int.h.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_object_open_ks(hsm_hdl_t parent, HsmKind parentKind, HsmKind kind,
	HsmKeyStore *keyStore, void *priv, void (*freePriv)(void *priv),
	hsm_hdl_t *handle)
{
    ObjEntry *p, *e = NULL;
    hsm_err_t err;

    if (handle == NULL) {
	if (freePriv) {
	    freePriv(priv);
	}
	return hsm_fail(HSM_INVALID_ADDRESS, "open %s: the handle pointer "
		"is NULL", hsm_kind_name(kind));
    }
    *handle = 0;
    if ((err = Pin(parent, parentKind, &p)) != HSM_NO_ERROR) {
	if (freePriv) {
	    freePriv(priv);
	}
	return err;
    }
    if ((err = hsm_device_lock(p->obj.device)) != HSM_NO_ERROR) {
	Unpin(p);
	if (freePriv) {
	    freePriv(priv);
	}
	return err;
    }
    if (p->closed) {
	err = hsm_fail(HSM_UNKNOWN_HANDLE, "handle %u was closed",
		(unsigned) parent);
    } else {
	hsm_global_lock();
	err = NewEntry(kind, p->obj.device,
		keyStore ? keyStore : p->obj.keyStore, p, priv, freePriv, &e);
	hsm_global_unlock();
    }
    hsm_device_unlock(p->obj.device);
    Unpin(p);
    if (err != HSM_NO_ERROR) {
	if (freePriv) {
	    freePriv(priv);
	}
	return err;
    }
    *handle = e->obj.handle;
    hsm_clear_error();
    return HSM_NO_ERROR;
}

hsm_err_t
hsm_object_open(hsm_hdl_t parent, HsmKind parentKind, HsmKind kind,
	void *priv, void (*freePriv)(void *priv), hsm_hdl_t *handle)
{
    return hsm_object_open_ks(parent, parentKind, kind, NULL, priv,
	    freePriv, handle);
}

/*
 *----------------------------------------------------------------------
 *
 * CloseTree --
 *	Closes an object and everything under it, children first (device
 *	lock held).  Each object leaves the table, its private state is
 *	freed, and its memory goes when its last pin does.  Sessions give
 *	back their device reference (counted in *deviceRefs for the caller,
 *	who releases them after unlocking the device).
 *
 *----------------------------------------------------------------------
 */

static void
CloseTree(ObjEntry *e, int *deviceRefs)
{
    int freeEntry;

    while (e->firstChild != NULL) {
	CloseTree(e->firstChild, deviceRefs);
    }
    if (e->obj.freePriv != NULL) {
	e->obj.freePriv(e->obj.priv);
    }
    e->obj.priv = NULL;
    if (e->obj.kind == HSM_KIND_SESSION) {
	(*deviceRefs)++;
    }
    hsm_global_lock();
    TableRemove(e);
    e->closed = 1;
    if (e->obj.parent != NULL) {
	ObjEntry *p = (ObjEntry *) e->obj.parent;

	if (e->prevSibling) {
	    e->prevSibling->nextSibling = e->nextSibling;
	} else {
	    p->firstChild = e->nextSibling;
	}
	if (e->nextSibling) {
	    e->nextSibling->prevSibling = e->prevSibling;
	}
    }
    e->firstChild = e->nextSibling = e->prevSibling = NULL;
    freeEntry = e->pins == 0;
    hsm_global_unlock();
    if (freeEntry) {
	free(e);
    }
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_object_close --
 *	Closes an object of the given kind and its subtree.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_object_close(hsm_hdl_t handle, HsmKind kind)
{
    ObjEntry *e;
    HsmDevice *device;
    hsm_err_t err;
    int deviceRefs = 0;

    hsm_clear_error();
    if ((err = Pin(handle, kind, &e)) != HSM_NO_ERROR) {
	return err;
    }
    device = e->obj.device;
    if ((err = hsm_device_lock(device)) != HSM_NO_ERROR) {
	Unpin(e);
	return err;
    }
    if (e->closed) {
	hsm_device_unlock(device);
	Unpin(e);
	return hsm_fail(HSM_UNKNOWN_HANDLE, "handle %u was closed",
		(unsigned) handle);
    }
    CloseTree(e, &deviceRefs);
    hsm_device_unlock(device);
    /* The pin keeps device alive until here, so releasing is safe. */
    while (deviceRefs-- > 0) {
	hsm_device_release(device);
    }
    Unpin(e);
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * DefaultDir --
 *	The state directory of hsm_open_session: the thread's selection,
 *	else $SPPS_HSM_DIR, else <spps home>/hsm/default.  Malloc'ed.
 *
 *----------------------------------------------------------------------
 */

static char *
DefaultDir(void)
{
    const char *env;
    char *home, *hsm, *dir;

    if (threadDir[0] != '\0') {
	return strdup(threadDir);
    }
    env = getenv("SPPS_HSM_DIR");
    if (env != NULL && *env != '\0') {
	return strdup(env);
    }
    if ((home = plat_spps_home()) == NULL) {
	return NULL;
    }
    hsm = plat_join(home, "hsm");
    free(home);
    if (hsm == NULL) {
	return NULL;
    }
    dir = plat_join(hsm, "default");
    free(hsm);
    return dir;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_spps_set_state_dir --
 *	Selects the state directory of this thread's next sessions.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_spps_set_state_dir(const char *dir)
{
    hsm_clear_error();
    if (dir == NULL) {
	threadDir[0] = '\0';
	return HSM_NO_ERROR;
    }
    if (*dir == '\0') {
	return hsm_fail(HSM_INVALID_PARAM, "set_state_dir: the directory "
		"name is empty");
    }
    if (strlen(dir) >= sizeof(threadDir)) {
	return hsm_fail(HSM_INVALID_PARAM, "set_state_dir: the directory "
		"name is %lu characters long, at most %lu are allowed",
		(unsigned long) strlen(dir), (unsigned long) sizeof(threadDir) - 1);
    }
    strcpy(threadDir, dir);
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_spps_open_session_at, hsm_open_session --
 *	Open a session on the HSM of a state directory (opening the device
 *	if this process has not yet, creating it if the directory is new).
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_spps_open_session_at(const char *dir, open_session_args_t *args,
	hsm_hdl_t *session_hdl)
{
    HsmDevice *device;
    ObjEntry *e;
    hsm_err_t err;

    hsm_clear_error();
    (void) args;		/* priority and mode mean nothing here */
    if (session_hdl == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "open_session: session_hdl is "
		"NULL");
    }
    *session_hdl = 0;
    if (dir == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "open_session: the state "
		"directory is NULL");
    }
    if ((err = hsm_device_acquire(dir, &device)) != HSM_NO_ERROR) {
	return err;
    }
    hsm_global_lock();
    err = NewEntry(HSM_KIND_SESSION, device, NULL, NULL, NULL, NULL, &e);
    hsm_global_unlock();
    if (err != HSM_NO_ERROR) {
	hsm_device_release(device);
	return err;
    }
    *session_hdl = e->obj.handle;
    return HSM_NO_ERROR;
}

hsm_err_t
hsm_open_session(open_session_args_t *args, hsm_hdl_t *session_hdl)
{
    char *dir = DefaultDir();
    hsm_err_t err;

    if (dir == NULL) {
	if (session_hdl != NULL) {
	    *session_hdl = 0;
	}
	return hsm_fail(HSM_NVM_ERROR, "open_session: no state directory: "
		"set SPPS_HSM_DIR, SPPS_HOME or HOME");
    }
    err = hsm_spps_open_session_at(dir, args, session_hdl);
    free(dir);
    return err;
}

hsm_err_t
hsm_close_session(hsm_hdl_t session_hdl)
{
    return hsm_object_close(session_hdl, HSM_KIND_SESSION);
}
