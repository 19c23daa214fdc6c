/*
 * hsm_storage.c --
 *
 *	Data storage (seed 6.14), the root key encryption keys and their
 *	export (seed 6.15) with the device lifecycle that guards it, and
 *	get_info (seed 6.16).
 *
 *	Root KEKs:
 *	  - part-unique: HKDF-SHA-384 of the device secret, info "root kek
 *	    unique": secret, and different on every HSM;
 *	  - common: HKDF-SHA-384 of the public label HSM_COMMON_KEK_IKM, info
 *	    "spps common root kek v1": the same on every spps HSM and NOT
 *	    secret (anyone can compute it), like a key shared by a whole chip
 *	    model.  It serves to test and to move keys between HSMs, never to
 *	    protect them.
 */

#include "hsm_core.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>

#define HSM_COMMON_KEK_IKM "spps common root kek: public, not a secret"
#define ROOT_KEK_LEN 32

/* Largest data storage object. */
#define HSM_DATA_MAX ((uint32_t) 1 << 20)

/*
 *----------------------------------------------------------------------
 *
 * hsm_root_kek --
 *	The part-unique or common root KEK of a device (32 bytes).
 *
 *----------------------------------------------------------------------
 */

int
hsm_root_kek(HsmDevice *dev, int common, uint8_t *out)
{
    if (common) {
	return hsm_hkdf((const uint8_t *) HSM_COMMON_KEK_IKM,
		strlen(HSM_COMMON_KEK_IKM), NULL, 0, "spps common root kek v1",
		out, ROOT_KEK_LEN);
    }
    return hsm_device_derive(dev, "root kek unique", out, ROOT_KEK_LEN);
}

/* ------------------------------------------------------------------ */
/* Data storage                                                         */
/* ------------------------------------------------------------------ */

hsm_err_t
hsm_open_data_storage_service(hsm_hdl_t key_store_hdl,
	open_svc_data_storage_args_t *args, hsm_hdl_t *data_storage_hdl)
{
    hsm_clear_error();
    if (args == NULL) {
	if (data_storage_hdl != NULL) {
	    *data_storage_hdl = 0;
	}
	return hsm_fail(HSM_INVALID_ADDRESS, "open_data_storage_service: args "
		"is NULL");
    }
    return hsm_object_open(key_store_hdl, HSM_KIND_KEY_STORE,
	    HSM_KIND_DATA_STORAGE, NULL, NULL, data_storage_hdl);
}

hsm_err_t
hsm_close_data_storage_service(hsm_hdl_t data_storage_hdl)
{
    return hsm_object_close(data_storage_hdl, HSM_KIND_DATA_STORAGE);
}

static hsm_err_t
StoreData(HsmKeyStore *ks, op_data_storage_args_t *args)
{
    HsmDevice *dev = ks->device;
    HsmManifest *next;
    HsmNvmWrite w;
    hsm_err_t err;

    if (args->data_size == 0 || args->data_size > HSM_DATA_MAX) {
	return hsm_fail(HSM_INVALID_PARAM, "data_storage STORE: data_size is "
		"%u, must be 1..%u", (unsigned) args->data_size,
		(unsigned) HSM_DATA_MAX);
    }
    if (args->data == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "data_storage STORE: data is "
		"NULL");
    }
    if ((err = hsm_device_nvm_begin(dev)) != HSM_NO_ERROR) {
	return err;
    }
    if ((next = hsm_manifest_copy(dev->manifest)) == NULL) {
	return hsm_fail(HSM_OUT_OF_MEMORY, "data_storage: no memory");
    }
    if ((err = hsm_keystore_persist(ks, next)) != HSM_NO_ERROR) {
	hsm_manifest_free(next);
	return err;
    }
    if (hsm_manifest_set_data(hsm_manifest_store(next, ks->id), args->data_id,
	    args->data_size) != 0) {
	hsm_manifest_free(next);
	return hsm_fail(HSM_OUT_OF_MEMORY, "data_storage: no memory");
    }
    memset(&w, 0, sizeof(w));
    w.kind = HSM_OBJ_DATA;
    w.storeId = ks->id;
    w.objId = args->data_id;
    w.data = args->data;
    w.len = args->data_size;
    return hsm_keystore_commit(ks, next, &w, 1);
}

static hsm_err_t
RetrieveData(HsmKeyStore *ks, op_data_storage_args_t *args)
{
    HsmDevice *dev = ks->device;
    const HsmManStore *s;
    const HsmManData *d;
    uint8_t *data;
    size_t len;
    hsm_err_t err;

    if ((err = hsm_device_nvm_begin(dev)) != HSM_NO_ERROR) {
	return err;
    }
    s = hsm_manifest_store(dev->manifest, ks->id);
    if (s == NULL || (d = hsm_manifest_data(s, args->data_id)) == NULL) {
	return hsm_fail(HSM_UNKNOWN_ID, "data_storage RETRIEVE: key store %u "
		"holds no data with id %u", (unsigned) ks->id,
		(unsigned) args->data_id);
    }
    if (args->data_size < d->size) {
	uint32_t have = args->data_size;

	args->data_size = d->size;
	return hsm_fail(HSM_INVALID_PARAM, "data_storage RETRIEVE: data %u of "
		"key store %u takes %u bytes, data_size is %u (data_size now "
		"says the size needed)", (unsigned) args->data_id,
		(unsigned) ks->id, (unsigned) d->size, (unsigned) have);
    }
    if (args->data == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "data_storage RETRIEVE: data is "
		"NULL");
    }
    if ((err = hsm_device_read_object(dev, HSM_OBJ_DATA, ks->id,
	    args->data_id, NULL, d->version, &data, &len)) != HSM_NO_ERROR) {
	return err;
    }
    if (len != d->size) {
	hsm_secure_free(data, len);
	return hsm_fail(HSM_KEY_STORE_ERROR, "data %u of key store %u holds "
		"%lu bytes, the manifest says %u", (unsigned) args->data_id,
		(unsigned) ks->id, (unsigned long) len, (unsigned) d->size);
    }
    memcpy(args->data, data, len);
    args->data_size = (uint32_t) len;
    hsm_secure_free(data, len);
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_data_storage --
 *	Stores data under an id of the key store (a strict write: durable
 *	and counted against the store's max_updates_number when it returns)
 *	or retrieves it.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_data_storage(hsm_hdl_t data_storage_hdl, op_data_storage_args_t *args)
{
    hsm_err_t err;
    HsmOp op;

    hsm_clear_error();
    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "data_storage: args is NULL");
    }
    if ((err = hsm_op_begin(data_storage_hdl, HSM_KIND_DATA_STORAGE, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    if (args->flags & ~HSM_OP_DATA_STORAGE_FLAGS_STORE) {
	err = hsm_fail(HSM_INVALID_PARAM, "data_storage: flags 0x%02x has "
		"unknown bits", (unsigned) args->flags);
    } else if (args->flags & HSM_OP_DATA_STORAGE_FLAGS_STORE) {
	err = StoreData(op.obj->keyStore, args);
    } else {
	err = RetrieveData(op.obj->keyStore, args);
    }
    return hsm_op_end(&op, err);
}

/* ------------------------------------------------------------------ */
/* Lifecycle and root KEK export                                        */
/* ------------------------------------------------------------------ */

/*
 *----------------------------------------------------------------------
 *
 * hsm_spps_close_lifecycle --
 *	OEM_OPEN -> OEM_CLOSED with the owner's P-256 key (hsm_spps.h).
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_spps_close_lifecycle(hsm_hdl_t session_hdl, const uint8_t *owner_xy,
	size_t len)
{
    const HsmKeyTypeInfo *p256 = hsm_key_type_info(HSM_KEY_TYPE_ECDSA_NIST_P256);
    HsmManifest *next;
    HsmDevice *dev;
    EVP_PKEY *pkey = NULL;
    hsm_err_t err;
    HsmOp op;

    hsm_clear_error();
    if (owner_xy == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "close_lifecycle: owner_xy is "
		"NULL");
    }
    if (len != 64) {
	return hsm_fail(HSM_INVALID_PARAM, "close_lifecycle: the owner key is "
		"%lu bytes, a P-256 public key x || y takes 64",
		(unsigned long) len);
    }
    if (hsm_ec_from_public(p256, owner_xy, len, &pkey) != 0) {
	ERR_clear_error();
	return hsm_fail(HSM_INVALID_PARAM, "close_lifecycle: the owner key is "
		"not a point of P-256");
    }
    EVP_PKEY_free(pkey);
    if ((err = hsm_op_begin(session_hdl, HSM_KIND_SESSION, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    dev = op.obj->device;
    if ((err = hsm_device_nvm_begin(dev)) != HSM_NO_ERROR) {
	return hsm_op_end(&op, err);
    }
    if (dev->manifest->lifecycle != HSM_SPPS_LIFECYCLE_OEM_OPEN) {
	return hsm_op_end(&op, hsm_fail(HSM_INVALID_LIFECYCLE,
		"close_lifecycle: the HSM in %s is not in OEM_OPEN (lifecycle "
		"0x%x)", dev->dir, (unsigned) dev->manifest->lifecycle));
    }
    if ((next = hsm_manifest_copy(dev->manifest)) == NULL) {
	return hsm_op_end(&op, hsm_fail(HSM_OUT_OF_MEMORY, "close_lifecycle: "
		"no memory"));
    }
    next->lifecycle = HSM_SPPS_LIFECYCLE_OEM_CLOSED;
    next->hasOwner = 1;
    memcpy(next->owner, owner_xy, 64);
    err = hsm_device_commit(dev, next, NULL, 0, 1);
    return hsm_op_end(&op, err);
}

/* Checks the owner's signature r || s over label || chip id || flags. */
static hsm_err_t
CheckExportSignature(HsmDevice *dev, const op_export_root_kek_args_t *args)
{
    const HsmKeyTypeInfo *p256 = hsm_key_type_info(HSM_KEY_TYPE_ECDSA_NIST_P256);
    static const char label[] = HSM_SPPS_ROOT_KEK_EXPORT_LABEL;
    uint8_t msg[sizeof(label) - 1 + 8 + 1];
    unsigned char *der = NULL;
    EVP_PKEY *owner = NULL;
    EVP_MD_CTX *md = NULL;
    ECDSA_SIG *sig = NULL;
    BIGNUM *r = NULL, *s = NULL;
    int derLen, ok = 0;

    if (args->signed_message == NULL || args->signed_msg_size == 0) {
	return hsm_fail(HSM_INVALID_LIFECYCLE, "export_root_kek: the HSM in "
		"%s is OEM_CLOSED: the export needs the owner's signed message",
		dev->dir);
    }
    if (args->signed_msg_size != 64) {
	return hsm_fail(HSM_INVALID_MESSAGE, "export_root_kek: signed_msg_size "
		"is %u, the owner's ECDSA P-256 signature r || s takes 64 bytes",
		(unsigned) args->signed_msg_size);
    }
    memcpy(msg, label, sizeof(label) - 1);
    memcpy(msg + sizeof(label) - 1, dev->chipId, 8);
    msg[sizeof(msg) - 1] = args->flags;
    if (hsm_ec_from_public(p256, dev->manifest->owner, 64, &owner) != 0
	    || (sig = ECDSA_SIG_new()) == NULL
	    || (r = BN_bin2bn(args->signed_message, 32, NULL)) == NULL
	    || (s = BN_bin2bn(args->signed_message + 32, 32, NULL)) == NULL
	    || !ECDSA_SIG_set0(sig, r, s)) {
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	EVP_PKEY_free(owner);
	return hsm_fail_ossl("export_root_kek: checking the signature");
    }
    derLen = i2d_ECDSA_SIG(sig, &der);
    if (derLen > 0 && (md = EVP_MD_CTX_new()) != NULL
	    && EVP_DigestVerifyInit_ex(md, NULL, "SHA256", NULL, NULL, owner,
		    NULL) == 1) {
	ok = EVP_DigestVerify(md, der, (size_t) derLen, msg, sizeof(msg)) == 1;
    }
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    EVP_PKEY_free(owner);
    if (!ok) {
	return hsm_fail(HSM_INVALID_LIFECYCLE, "export_root_kek: the signed "
		"message is not the owner's signature of the export (the HSM "
		"in %s is OEM_CLOSED)", dev->dir);
    }
    return HSM_NO_ERROR;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_export_root_key_encryption_key --
 *	Gives the part-unique or common root KEK: freely in OEM_OPEN, with
 *	the owner's signature in OEM_CLOSED.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_export_root_key_encryption_key(hsm_hdl_t session_hdl,
	op_export_root_kek_args_t *args)
{
    HsmDevice *dev;
    hsm_err_t err;
    HsmOp op;

    hsm_clear_error();
    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "export_root_kek: args is NULL");
    }
    if ((err = hsm_op_begin(session_hdl, HSM_KIND_SESSION, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    dev = op.obj->device;
    if (args->flags & ~HSM_OP_EXPORT_ROOT_KEK_FLAGS_COMMON_KEK) {
	err = hsm_fail(HSM_INVALID_PARAM, "export_root_kek: flags 0x%02x has "
		"unknown bits", (unsigned) args->flags);
    } else if (args->root_kek_size != ROOT_KEK_LEN) {
	err = hsm_fail(HSM_INVALID_PARAM, "export_root_kek: root_kek_size is "
		"%u, must be %d", (unsigned) args->root_kek_size, ROOT_KEK_LEN);
    } else if (args->out_root_kek == NULL) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "export_root_kek: out_root_kek is "
		"NULL");
    } else if ((err = hsm_device_nvm_begin(dev)) != HSM_NO_ERROR) {
	/* err says why */
    } else if (dev->manifest->lifecycle == HSM_SPPS_LIFECYCLE_OEM_OPEN
	    || (err = CheckExportSignature(dev, args)) == HSM_NO_ERROR) {
	if (hsm_root_kek(dev, (args->flags
		& HSM_OP_EXPORT_ROOT_KEK_FLAGS_COMMON_KEK) != 0,
		args->out_root_kek) != 0) {
	    err = hsm_fail_ossl("export_root_kek: deriving the root KEK");
	} else {
	    err = HSM_NO_ERROR;
	}
    }
    return hsm_op_end(&op, err);
}

/* ------------------------------------------------------------------ */
/* Get info                                                             */
/* ------------------------------------------------------------------ */

/* What hsm_get_info says about the engine. */
#define HSM_INFO_USER_SAB_ID	0u
#define HSM_INFO_VERSION	0x00020000u	/* API revision 2.0 */
#define HSM_INFO_VERSION_EXT	0x00000001u	/* state directory format 1 */

hsm_err_t
hsm_get_info(hsm_hdl_t session_hdl, op_get_info_args_t *args)
{
    HsmDevice *dev;
    hsm_err_t err;
    HsmOp op;

    hsm_clear_error();
    if (args == NULL || args->user_sab_id == NULL
	    || args->chip_unique_id == NULL
	    || args->chip_monotonic_counter == NULL
	    || args->chip_life_cycle == NULL || args->version == NULL
	    || args->version_ext == NULL || args->fips_mode == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "get_info: %s is NULL",
		args == NULL ? "args" : "an output pointer of args");
    }
    if ((err = hsm_op_begin(session_hdl, HSM_KIND_SESSION, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    dev = op.obj->device;
    if ((err = hsm_device_nvm_begin(dev)) == HSM_NO_ERROR) {
	*args->user_sab_id = HSM_INFO_USER_SAB_ID;
	memcpy(args->chip_unique_id, dev->chipId, 8);
	*args->chip_monotonic_counter = (uint16_t) (dev->counter & 0xFFFF);
	*args->chip_life_cycle = dev->manifest->lifecycle;
	*args->version = HSM_INFO_VERSION;
	*args->version_ext = HSM_INFO_VERSION_EXT;
	*args->fips_mode = 0;
    }
    return hsm_op_end(&op, err);
}
