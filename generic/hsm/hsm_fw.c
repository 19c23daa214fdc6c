/*
 * hsm_fw.c --
 *
 *	The firmware interface (hsm_fw.h): what the SPPS roles reach inside
 *	the boundary.  Firmware key stores, borrowing a key, named blobs with
 *	the guarantees of a strict write, transactions across processes, and
 *	device-bound derivations.
 *
 *	A blob write is a commit of its own (docs/ARCHITECTURE.md, NVM
 *	commit protocol) that always moves the monotonic counter: when
 *	hsm_fw_blob_write returns HSM_NO_ERROR the new content is on disk and
 *	an older copy of the blob, or of the manifest, is refused if ever put
 *	back.  That is what a role's ticket counter needs: a decrement is
 *	durable and rollback-protected before the ticket is handed out.
 */

#include "hsm_core.h"

#include <stdlib.h>
#include <string.h>

/* Largest blob. */
#define HSM_BLOB_MAX ((size_t) 1 << 20)

/* Largest derivation (HKDF-SHA-384: 255 blocks of 48 bytes). */
#define HSM_DERIVE_MAX (255 * 48)

hsm_err_t
hsm_fw_open_key_store(hsm_hdl_t session_hdl, uint16_t fwId,
	hsm_hdl_t *key_store_hdl)
{
    hsm_clear_error();
    if (key_store_hdl == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "fw_open_key_store: key_store_hdl "
		"is NULL");
    }
    return hsm_keystore_open(session_hdl, HSM_FW_KEY_STORE_BASE + fwId, 0, 0,
	    0, 1, key_store_hdl);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_fw_key_use --
 *	Calls fn with a key of the key store service, device locked.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_fw_key_use(hsm_hdl_t key_store_hdl, uint32_t keyId,
	hsm_err_t (*fn)(const HsmFwKey *key, void *ctx), void *ctx)
{
    HsmFwKey fk;
    HsmKey *key;
    hsm_err_t err;
    HsmOp op;

    hsm_clear_error();
    if (fn == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "fw_key_use: fn is NULL");
    }
    if ((err = hsm_op_begin(key_store_hdl, HSM_KIND_KEY_STORE, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    if ((err = hsm_keystore_find(op.obj->keyStore, keyId, &key, NULL))
	    == HSM_NO_ERROR
	    && (err = hsm_keystore_pkey(key)) == HSM_NO_ERROR) {
	fk.type = key->type;
	fk.info = key->info;
	fk.secret = key->secret;
	fk.secretLen = key->secretLen;
	fk.pkey = key->pkey;
	hsm_clear_error();
	err = fn(&fk, ctx);
	memset(&fk, 0, sizeof(fk));
    }
    return hsm_op_end(&op, err);
}

/* ------------------------------------------------------------------ */
/* Blobs                                                                */
/* ------------------------------------------------------------------ */

static hsm_err_t
CheckName(const char *fn, const char *name)
{
    size_t i, n;

    if (name == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: name is NULL", fn);
    }
    n = strlen(name);
    if (n == 0 || n > HSM_BLOB_NAME_MAX) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: blob names are 1..%d "
		"characters (got %lu)", fn, HSM_BLOB_NAME_MAX, (unsigned long) n);
    }
    for (i = 0; i < n; i++) {
	char c = name[i];

	if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		|| (c >= '0' && c <= '9') || c == '.' || c == '_'
		|| c == '-')) {
	    return hsm_fail(HSM_INVALID_PARAM, "%s: blob name \"%s\" has a "
		    "character outside [A-Za-z0-9._-]", fn, name);
	}
    }
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: \"%s\" is not a blob name",
		fn, name);
    }
    return HSM_NO_ERROR;
}

hsm_err_t
hsm_fw_blob_read(hsm_hdl_t session_hdl, const char *name, uint8_t **data,
	size_t *len)
{
    static const char fn[] = "fw_blob_read";
    const HsmManBlob *b;
    HsmDevice *dev;
    uint8_t *plain, *copy;
    size_t plainLen;
    hsm_err_t err;
    HsmOp op;

    hsm_clear_error();
    if (data == NULL || len == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: data or len is NULL", fn);
    }
    *data = NULL;
    *len = 0;
    if ((err = CheckName(fn, name)) != HSM_NO_ERROR) {
	return err;
    }
    if ((err = hsm_op_begin(session_hdl, HSM_KIND_SESSION, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    dev = op.obj->device;
    if ((err = hsm_device_nvm_begin(dev)) != HSM_NO_ERROR) {
	return hsm_op_end(&op, err);
    }
    if ((b = hsm_manifest_blob(dev->manifest, name)) == NULL) {
	return hsm_op_end(&op, hsm_fail(HSM_UNKNOWN_ID, "%s: there is no blob "
		"\"%s\" in %s", fn, name, dev->dir));
    }
    if ((err = hsm_device_read_object(dev, HSM_OBJ_BLOB, 0, 0, name,
	    b->version, &plain, &plainLen)) != HSM_NO_ERROR) {
	return hsm_op_end(&op, err);
    }
    if (plainLen != b->size) {
	hsm_secure_free(plain, plainLen);
	return hsm_op_end(&op, hsm_fail(HSM_NVM_ERROR, "%s: blob \"%s\" holds "
		"%lu bytes, the manifest says %u", fn, name,
		(unsigned long) plainLen,
		(unsigned) b->size));
    }
    if ((copy = malloc(plainLen ? plainLen : 1)) == NULL) {
	hsm_secure_free(plain, plainLen);
	return hsm_op_end(&op, hsm_fail(HSM_OUT_OF_MEMORY, "%s: no memory", fn));
    }
    memcpy(copy, plain, plainLen);
    hsm_secure_free(plain, plainLen);
    *data = copy;
    *len = plainLen;
    return hsm_op_end(&op, HSM_NO_ERROR);
}

hsm_err_t
hsm_fw_blob_write(hsm_hdl_t session_hdl, const char *name,
	const uint8_t *data, size_t len)
{
    static const char fn[] = "fw_blob_write";
    static const uint8_t empty[1] = {0};
    HsmManifest *next;
    HsmDevice *dev;
    HsmNvmWrite w;
    hsm_err_t err;
    HsmOp op;

    hsm_clear_error();
    if ((err = CheckName(fn, name)) != HSM_NO_ERROR) {
	return err;
    }
    if (data == NULL && len > 0) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: data is NULL", fn);
    }
    if (len > HSM_BLOB_MAX) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: blob \"%s\" would take %lu "
		"bytes, at most %lu are allowed", fn, name, (unsigned long) len,
		(unsigned long) HSM_BLOB_MAX);
    }
    if ((err = hsm_op_begin(session_hdl, HSM_KIND_SESSION, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    dev = op.obj->device;
    if ((err = hsm_device_nvm_begin(dev)) != HSM_NO_ERROR) {
	return hsm_op_end(&op, err);
    }
    if ((next = hsm_manifest_copy(dev->manifest)) == NULL
	    || hsm_manifest_set_blob(next, name, (uint32_t) len) != 0) {
	hsm_manifest_free(next);
	return hsm_op_end(&op, hsm_fail(HSM_OUT_OF_MEMORY, "%s: no memory",
		fn));
    }
    memset(&w, 0, sizeof(w));
    w.kind = HSM_OBJ_BLOB;
    w.name = name;
    w.data = data ? data : empty;
    w.len = len;
    err = hsm_device_commit(dev, next, &w, 1, 1);
    return hsm_op_end(&op, err);
}

hsm_err_t
hsm_fw_blob_delete(hsm_hdl_t session_hdl, const char *name)
{
    static const char fn[] = "fw_blob_delete";
    HsmManifest *next;
    HsmDevice *dev;
    HsmNvmWrite w;
    hsm_err_t err;
    HsmOp op;

    hsm_clear_error();
    if ((err = CheckName(fn, name)) != HSM_NO_ERROR) {
	return err;
    }
    if ((err = hsm_op_begin(session_hdl, HSM_KIND_SESSION, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    dev = op.obj->device;
    if ((err = hsm_device_nvm_begin(dev)) != HSM_NO_ERROR) {
	return hsm_op_end(&op, err);
    }
    if (hsm_manifest_blob(dev->manifest, name) == NULL) {
	return hsm_op_end(&op, hsm_fail(HSM_UNKNOWN_ID, "%s: there is no blob "
		"\"%s\" in %s", fn, name, dev->dir));
    }
    if ((next = hsm_manifest_copy(dev->manifest)) == NULL) {
	return hsm_op_end(&op, hsm_fail(HSM_OUT_OF_MEMORY, "%s: no memory",
		fn));
    }
    hsm_manifest_remove_blob(next, name);
    memset(&w, 0, sizeof(w));
    w.kind = HSM_OBJ_BLOB;
    w.name = name;
    err = hsm_device_commit(dev, next, &w, 1, 1);
    return hsm_op_end(&op, err);
}

static int
CompareStrings(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

hsm_err_t
hsm_fw_blob_list(hsm_hdl_t session_hdl, const char *prefix, char ***names)
{
    static const char fn[] = "fw_blob_list";
    const HsmManifest *m;
    size_t i, n = 0, plen;
    char **list;
    hsm_err_t err;
    HsmOp op;

    hsm_clear_error();
    if (names == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: names is NULL", fn);
    }
    *names = NULL;
    if (prefix == NULL) {
	prefix = "";
    }
    plen = strlen(prefix);
    if ((err = hsm_op_begin(session_hdl, HSM_KIND_SESSION, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    if ((err = hsm_device_nvm_begin(op.obj->device)) != HSM_NO_ERROR) {
	return hsm_op_end(&op, err);
    }
    m = op.obj->device->manifest;
    if ((list = calloc(m->nBlobs + 1, sizeof(char *))) == NULL) {
	return hsm_op_end(&op, hsm_fail(HSM_OUT_OF_MEMORY, "%s: no memory",
		fn));
    }
    for (i = 0; i < m->nBlobs; i++) {
	if (strncmp(m->blobs[i].name, prefix, plen) != 0) {
	    continue;
	}
	if ((list[n] = strdup(m->blobs[i].name)) == NULL) {
	    plat_free_list(list);
	    return hsm_op_end(&op, hsm_fail(HSM_OUT_OF_MEMORY, "%s: no memory",
		    fn));
	}
	n++;
    }
    qsort(list, n, sizeof(char *), CompareStrings);
    *names = list;
    return hsm_op_end(&op, HSM_NO_ERROR);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_fw_transaction --
 *	Runs fn holding the device lock and the lock file, with the view of
 *	the NVM refreshed: no other thread or process commits until fn
 *	returns.  The engine's calls inside fn on the same HSM nest (the
 *	device lock is recursive per thread).
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_fw_transaction(hsm_hdl_t session_hdl,
	hsm_err_t (*fn)(hsm_hdl_t session_hdl, void *ctx), void *ctx)
{
    hsm_err_t err;
    HsmOp op;

    hsm_clear_error();
    if (fn == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "fw_transaction: fn is NULL");
    }
    if ((err = hsm_op_begin(session_hdl, HSM_KIND_SESSION, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    if ((err = hsm_device_nvm_begin(op.obj->device)) == HSM_NO_ERROR) {
	err = fn(session_hdl, ctx);
    }
    return hsm_op_end(&op, err);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_fw_derive --
 *	HKDF-SHA-384 of the device secret with info "spps fw " + label (the
 *	prefix keeps the firmware's labels apart from the engine's own).
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_fw_derive(hsm_hdl_t session_hdl, const char *label, uint8_t *out,
	size_t len)
{
    char info[256];
    hsm_err_t err;
    HsmOp op;

    hsm_clear_error();
    if (label == NULL || out == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "fw_derive: %s is NULL",
		label == NULL ? "label" : "out");
    }
    if (len == 0 || len > HSM_DERIVE_MAX) {
	return hsm_fail(HSM_INVALID_PARAM, "fw_derive: len is %lu, must be "
		"1..%d", (unsigned long) len, HSM_DERIVE_MAX);
    }
    if (strlen(label) > sizeof(info) - 16) {
	return hsm_fail(HSM_INVALID_PARAM, "fw_derive: the label is %lu "
		"characters, at most %lu are allowed",
		(unsigned long) strlen(label), (unsigned long) sizeof(info) - 16);
    }
    snprintf(info, sizeof(info), "spps fw %s", label);
    if ((err = hsm_op_begin(session_hdl, HSM_KIND_SESSION, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    if (hsm_device_derive(op.obj->device, info, out, len) != 0) {
	err = hsm_fail_ossl("fw_derive");
    }
    return hsm_op_end(&op, err);
}

const char *
hsm_fw_state_dir(hsm_hdl_t session_hdl)
{
    const char *dir = NULL;
    HsmOp op;

    if (hsm_op_begin(session_hdl, HSM_KIND_SESSION, &op) == HSM_NO_ERROR) {
	/* The device lives as long as the session. */
	dir = op.obj->device->dir;
	hsm_op_end(&op, HSM_NO_ERROR);
    }
    return dir;
}
