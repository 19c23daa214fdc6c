/*
 * hsm_keymgmt.c --
 *
 *	The key management service (seed 6.4): generating, importing,
 *	updating and deleting keys, key group cache control, and the
 *	butterfly key expansion.  The key info rules of the seed:
 *	  - PERMANENT: the key can never be updated or deleted;
 *	  - TRANSIENT: in memory only, gone when the key store service
 *	    closes; never in a group with persistent keys;
 *	  - MASTER: only master keys feed the butterfly expansion;
 *	  - KEK: only keys imported through hsm_manage_key may have it, only
 *	    AES-256 keys, and they serve only to import other keys.
 */

#include "hsm_core.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#define GCM_IV	12
#define GCM_TAG	16

/*
 *----------------------------------------------------------------------
 *
 * hsm_open_key_management_service, hsm_close_key_management_service --
 *	A key management service on a key store service.  No service flags
 *	are defined; their value is ignored.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_open_key_management_service(hsm_hdl_t key_store_hdl,
	open_svc_key_management_args_t *args, hsm_hdl_t *key_management_hdl)
{
    hsm_clear_error();
    if (args == NULL) {
	if (key_management_hdl != NULL) {
	    *key_management_hdl = 0;
	}
	return hsm_fail(HSM_INVALID_ADDRESS, "open_key_management_service: "
		"args is NULL");
    }
    return hsm_object_open(key_store_hdl, HSM_KIND_KEY_STORE,
	    HSM_KIND_KEY_MANAGEMENT, NULL, NULL, key_management_hdl);
}

hsm_err_t
hsm_close_key_management_service(hsm_hdl_t key_management_hdl)
{
    return hsm_object_close(key_management_hdl, HSM_KIND_KEY_MANAGEMENT);
}

/* ------------------------------------------------------------------ */
/* Checks shared by the operations                                      */
/* ------------------------------------------------------------------ */

/* The entry of a key type the engine supports, or an error. */
static hsm_err_t
KeyType(const char *fn, hsm_key_type_t type, const HsmKeyTypeInfo **out)
{
    const HsmKeyTypeInfo *ti = hsm_key_type_info(type);

    *out = NULL;
    if (ti == NULL) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: key_type 0x%02x is not a key "
		"type of the API", fn, (unsigned) type);
    }
    if (!ti->supported) {
	return hsm_fail(HSM_FEATURE_NOT_SUPPORTED, "%s: key_type %s (0x%02x) "
		"is not supported (seed 6.4)", fn, ti->name, (unsigned) type);
    }
    *out = ti;
    return HSM_NO_ERROR;
}

/* The key info rules for a new key (imported says if it comes through
 * hsm_manage_key). */
static hsm_err_t
KeyInfo(const char *fn, hsm_key_info_t info, const HsmKeyTypeInfo *ti,
	int imported)
{
    const unsigned known = HSM_KEY_INFO_PERMANENT | HSM_KEY_INFO_TRANSIENT
	    | HSM_KEY_INFO_MASTER | HSM_KEY_INFO_KEK;

    if (info & ~known) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: key_info 0x%04x has unknown "
		"bits", fn, (unsigned) info);
    }
    if (info & HSM_KEY_INFO_KEK) {
	if (!imported) {
	    return hsm_fail(HSM_INVALID_PARAM, "%s: only keys imported with "
		    "manage_key may have the KEK attribute", fn);
	}
	if (ti->type != HSM_KEY_TYPE_AES_256) {
	    return hsm_fail(HSM_INVALID_PARAM, "%s: a KEK must be an AES_256 "
		    "key, not %s", fn, ti->name);
	}
    }
    return HSM_NO_ERROR;
}

/* The existing key an update or delete works on, which must not be
 * permanent. */
static hsm_err_t
KeyToChange(HsmKeyStore *ks, const char *fn, uint32_t id, HsmKey **key,
	HsmGroup **group)
{
    hsm_err_t err = hsm_keystore_find(ks, id, key, group);

    if (err != HSM_NO_ERROR) {
	return err;
    }
    if ((*key)->info & HSM_KEY_INFO_PERMANENT) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: key 0x%08x is PERMANENT: it "
		"can never be updated or deleted", fn, (unsigned) id);
    }
    return HSM_NO_ERROR;
}

/* An update keeps the key's type and its transient or persistent kind. */
static hsm_err_t
SameKind(const char *fn, const HsmKey *old, const HsmKeyTypeInfo *ti,
	hsm_key_info_t info)
{
    if (old->type != ti->type) {
	return hsm_fail(HSM_ID_CONFLICT, "%s: key 0x%08x is %s, it cannot be "
		"replaced by a %s key", fn, (unsigned) old->id,
		old->typeInfo->name, ti->name);
    }
    if ((old->info & HSM_KEY_INFO_TRANSIENT) != (info & HSM_KEY_INFO_TRANSIENT)) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: key 0x%08x is %s: an update "
		"cannot make it %s", fn, (unsigned) old->id,
		(old->info & HSM_KEY_INFO_TRANSIENT) ? "transient" : "persistent",
		(info & HSM_KEY_INFO_TRANSIENT) ? "transient" : "persistent");
    }
    return HSM_NO_ERROR;
}

/*
 * KeyDestination --
 *	Where a new or updated key goes.  A new key goes into its group
 *	(0..HSM_MAX_KEY_GROUP, made ready for the key's kind); an update
 *	replaces the existing key id, which must not be permanent and keeps
 *	its type and kind (*old).
 */
static hsm_err_t
KeyDestination(HsmKeyStore *ks, const char *fn, int create,
	hsm_key_group_t group, uint32_t id, const HsmKeyTypeInfo *ti,
	hsm_key_info_t info, HsmKey **old, HsmGroup **g)
{
    hsm_err_t err;

    if (create) {
	if (group > HSM_MAX_KEY_GROUP) {
	    return hsm_fail(HSM_INVALID_PARAM, "%s: key_group is %u, groups "
		    "are 0..%u", fn, (unsigned) group, HSM_MAX_KEY_GROUP);
	}
	return hsm_keystore_group_for(ks, group, info, g);
    }
    if ((err = KeyToChange(ks, fn, id, old, g)) != HSM_NO_ERROR) {
	return err;
    }
    return SameKind(fn, *old, ti, info);
}

/*
 *----------------------------------------------------------------------
 *
 * Store --
 *	The common end of generate, import and butterfly: puts the new key
 *	(its id chosen here for a create) into its group, and writes the
 *	group if strict.  If the write fails, the key store is as before the
 *	operation.  Takes over key in every case.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
Store(HsmKeyStore *ks, HsmGroup *g, HsmKey *key, int create, int strict,
	uint32_t *idOut)
{
    HsmKey *old = NULL, *backup = NULL;
    int wasDirty = g->dirty;
    hsm_err_t err;

    if (create) {
	if ((err = hsm_keystore_new_id(ks, &key->id)) != HSM_NO_ERROR) {
	    hsm_keystore_free_key(key);
	    return err;
	}
    } else if (strict && !g->transient) {
	/* Keep the old key to put it back if the write fails. */
	if ((err = hsm_keystore_find(ks, key->id, &old, NULL)) != HSM_NO_ERROR
		|| (backup = hsm_keystore_new_key(old->id, old->type,
			old->group, old->info, old->secret,
			old->secretLen)) == NULL) {
	    hsm_keystore_free_key(key);
	    return err ? err : hsm_fail(HSM_OUT_OF_MEMORY, "no memory");
	}
    }
    key->group = g->number;
    if ((err = hsm_keystore_put(ks, g, key, create)) != HSM_NO_ERROR) {
	hsm_keystore_free_key(key);
	hsm_keystore_free_key(backup);
	return err;
    }
    if (strict && !g->transient) {
	uint32_t id = key->id;

	err = hsm_keystore_write_group(ks, g);
	if (err != HSM_NO_ERROR && err != HSM_KEY_STORE_COUNTER) {
	    if (create) {
		hsm_keystore_delete(ks, g, id);
		g->dirty = wasDirty;
	    } else if (hsm_keystore_put(ks, g, backup, 0) == HSM_NO_ERROR) {
		backup = NULL;
	    }
	    hsm_keystore_free_key(backup);
	    return err;
	}
	hsm_keystore_free_key(backup);
	*idOut = id;
	return err;
    }
    *idOut = key->id;
    return HSM_NO_ERROR;
}

/* ------------------------------------------------------------------ */
/* Key generation                                                       */
/* ------------------------------------------------------------------ */

/*
 *----------------------------------------------------------------------
 *
 * NewSecret --
 *	Fresh key bytes from the device's DRBG: an AES key, or an EC private
 *	scalar drawn until it is in [1, n-1] (the order checked by building
 *	the key), with its EVP_PKEY.
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
NewSecret(HsmDevice *dev, const HsmKeyTypeInfo *ti, uint8_t *secret,
	EVP_PKEY **pkey)
{
    hsm_err_t err;
    int tries;

    *pkey = NULL;
    for (tries = 0; tries < 64; tries++) {
	if ((err = hsm_device_random(dev, secret, ti->size)) != HSM_NO_ERROR) {
	    return err;
	}
	if (!ti->isEc || hsm_ec_from_private(ti, secret, ti->size, pkey) == 0) {
	    return HSM_NO_ERROR;
	}
	ERR_clear_error();
    }
    return hsm_fail(HSM_GENERAL_ERROR, "no valid %s private key in 64 draws",
	    ti->name);
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_generate_key --
 *	Generates a key (CREATE: new id; UPDATE: replaces a key of the same
 *	type), returning an EC key's public key x || y.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_generate_key(hsm_hdl_t key_management_hdl, op_generate_key_args_t *args)
{
    static const char fn[] = "generate_key";
    const unsigned known = HSM_OP_KEY_GENERATION_FLAGS_UPDATE
	    | HSM_OP_KEY_GENERATION_FLAGS_CREATE
	    | HSM_OP_KEY_GENERATION_FLAGS_STRICT_OPERATION;
    const HsmKeyTypeInfo *ti;
    HsmKeyStore *ks;
    HsmKey *key = NULL, *old;
    HsmGroup *g;
    EVP_PKEY *pkey = NULL;
    uint8_t secret[66];
    uint32_t id = 0;
    hsm_err_t err;
    HsmOp op;
    int create, strict;

    hsm_clear_error();
    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: args is NULL", fn);
    }
    if ((err = hsm_op_begin(key_management_hdl, HSM_KIND_KEY_MANAGEMENT, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    ks = op.obj->keyStore;
    create = (args->flags & HSM_OP_KEY_GENERATION_FLAGS_CREATE) != 0;
    strict = (args->flags & HSM_OP_KEY_GENERATION_FLAGS_STRICT_OPERATION) != 0;
    if ((err = KeyType(fn, args->key_type, &ti)) != HSM_NO_ERROR) {
	goto done;
    }
    if (args->key_identifier == NULL) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "%s: key_identifier is NULL", fn);
	goto done;
    }
    if (args->flags & ~known) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags 0x%02x has unknown bits",
		fn, (unsigned) args->flags);
	goto done;
    }
    if (create == ((args->flags & HSM_OP_KEY_GENERATION_FLAGS_UPDATE) != 0)) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags must have exactly one of "
		"CREATE and UPDATE (got 0x%02x)", fn, (unsigned) args->flags);
	goto done;
    }
    if ((err = KeyInfo(fn, args->key_info, ti, 0)) != HSM_NO_ERROR) {
	goto done;
    }
    if (ti->isEc) {
	if (args->out_size != 2 * ti->size) {
	    err = hsm_fail(HSM_INVALID_PARAM, "%s: out_size is %u, a %s public "
		    "key x || y takes %u bytes", fn, (unsigned) args->out_size,
		    ti->name, (unsigned) (2 * ti->size));
	    goto done;
	}
	if (args->out_key == NULL) {
	    err = hsm_fail(HSM_INVALID_ADDRESS, "%s: out_key is NULL", fn);
	    goto done;
	}
    } else if (args->out_size != 0) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: out_size is %u, must be 0 for "
		"the symmetric key type %s", fn, (unsigned) args->out_size,
		ti->name);
	goto done;
    }
    if (!create) {
	id = *args->key_identifier;
    }
    if ((err = KeyDestination(ks, fn, create, args->key_group, id, ti,
	    args->key_info, &old, &g)) != HSM_NO_ERROR) {
	goto done;
    }
    if ((err = NewSecret(op.obj->device, ti, secret, &pkey)) != HSM_NO_ERROR) {
	goto done;
    }
    if (ti->isEc && hsm_ec_public_bytes(ti, pkey, args->out_key,
	    args->out_size) != 0) {
	err = hsm_fail_ossl("generate_key: public key output");
	goto done;
    }
    if ((key = hsm_keystore_new_key(id, ti->type, g->number, args->key_info,
	    secret, ti->size)) == NULL) {
	err = hsm_fail(HSM_OUT_OF_MEMORY, "%s: no memory for the key", fn);
	goto done;
    }
    key->pkey = pkey;
    pkey = NULL;
    err = Store(ks, g, key, create, strict, &id);
    key = NULL;
    if ((err == HSM_NO_ERROR || err == HSM_KEY_STORE_COUNTER) && create) {
	*args->key_identifier = id;
    }

  done:
    OPENSSL_cleanse(secret, sizeof(secret));
    EVP_PKEY_free(pkey);
    hsm_keystore_free_key(key);
    return hsm_op_end(&op, err);
}

/* ------------------------------------------------------------------ */
/* Import and delete                                                    */
/* ------------------------------------------------------------------ */

/* Decrypts IV || AES-256-GCM(kek, key) || tag (AAD empty) into out. */
static hsm_err_t
Unwrap(const char *fn, const uint8_t *kek, const uint8_t *in, size_t inLen,
	uint8_t *out)
{
    const EVP_CIPHER *gcm = hsm_aes(32, HSM_AES_GCM);
    EVP_CIPHER_CTX *ctx;
    size_t len = inLen - GCM_IV - GCM_TAG;
    int n, ok;

    if (gcm == NULL || (ctx = EVP_CIPHER_CTX_new()) == NULL) {
	return hsm_fail_ossl("manage_key: AES-256-GCM");
    }
    ok = EVP_DecryptInit_ex2(ctx, gcm, kek, in, NULL) == 1
	    && EVP_DecryptUpdate(ctx, out, &n, in + GCM_IV, (int) len) == 1
	    && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, GCM_TAG,
		    (void *) (in + GCM_IV + len)) == 1
	    && EVP_DecryptFinal_ex(ctx, out + len, &n) == 1;
    EVP_CIPHER_CTX_free(ctx);
    ERR_clear_error();
    if (!ok) {
	OPENSSL_cleanse(out, len);
	return hsm_fail(HSM_INVALID_PARAM, "%s: input_data does not decrypt "
		"under the KEK (wrong KEK, or the input was altered)", fn);
    }
    return HSM_NO_ERROR;
}

static hsm_err_t
DeleteKey(HsmKeyStore *ks, op_manage_key_args_t *args, int strict)
{
    static const char fn[] = "manage_key DELETE";
    HsmKey *key, *backup;
    HsmGroup *g;
    hsm_err_t err;
    int wasDirty;

    if (args->input_size != 0 || args->key_info != 0
	    || args->kek_identifier != 0 || args->key_group != 0
	    || (args->flags & (HSM_OP_MANAGE_KEY_FLAGS_PART_UNIQUE_ROOT_KEK
		    | HSM_OP_MANAGE_KEY_FLAGS_COMMON_ROOT_KEK))) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: input_size, key_info, "
		"kek_identifier, key_group and the root KEK flags must be 0",
		fn);
    }
    if ((err = KeyToChange(ks, fn, *args->key_identifier, &key, &g))
	    != HSM_NO_ERROR) {
	return err;
    }
    if (args->key_type != 0 && args->key_type != key->type) {
	return hsm_fail(HSM_INVALID_PARAM, "%s: key 0x%08x is %s, key_type "
		"says 0x%02x", fn, (unsigned) key->id, key->typeInfo->name,
		(unsigned) args->key_type);
    }
    if (!strict || g->transient) {
	hsm_keystore_delete(ks, g, key->id);
	return HSM_NO_ERROR;
    }
    if ((backup = hsm_keystore_new_key(key->id, key->type, key->group,
	    key->info, key->secret, key->secretLen)) == NULL) {
	return hsm_fail(HSM_OUT_OF_MEMORY, "%s: no memory", fn);
    }
    wasDirty = g->dirty;
    hsm_keystore_delete(ks, g, key->id);
    err = hsm_keystore_write_group(ks, g);
    if (err != HSM_NO_ERROR && err != HSM_KEY_STORE_COUNTER) {
	if (hsm_keystore_put(ks, g, backup, 0) != HSM_NO_ERROR) {
	    hsm_keystore_free_key(backup);
	}
	g->dirty = wasDirty;
	return err;
    }
    hsm_keystore_free_key(backup);
    return err;
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_manage_key --
 *	Imports a key wrapped under a KEK (a KEK key of the store, or a root
 *	KEK), creating a new id or updating a key of the same type; or
 *	deletes a key.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_manage_key(hsm_hdl_t key_management_hdl, op_manage_key_args_t *args)
{
    static const char fn[] = "manage_key";
    const unsigned known = HSM_OP_MANAGE_KEY_FLAGS_IMPORT_UPDATE
	    | HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    | HSM_OP_MANAGE_KEY_FLAGS_DELETE
	    | HSM_OP_MANAGE_KEY_FLAGS_PART_UNIQUE_ROOT_KEK
	    | HSM_OP_MANAGE_KEY_FLAGS_COMMON_ROOT_KEK
	    | HSM_OP_MANAGE_KEY_FLAGS_STRICT_OPERATION;
    const unsigned ops = HSM_OP_MANAGE_KEY_FLAGS_IMPORT_UPDATE
	    | HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    | HSM_OP_MANAGE_KEY_FLAGS_DELETE;
    const unsigned roots = HSM_OP_MANAGE_KEY_FLAGS_PART_UNIQUE_ROOT_KEK
	    | HSM_OP_MANAGE_KEY_FLAGS_COMMON_ROOT_KEK;
    const HsmKeyTypeInfo *ti;
    HsmKeyStore *ks;
    HsmKey *key = NULL, *old;
    HsmGroup *g;
    uint8_t *kek = NULL, *plain = NULL;
    uint32_t id = 0;
    unsigned op_;
    hsm_err_t err;
    HsmOp op;
    int create, strict;

    hsm_clear_error();
    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: args is NULL", fn);
    }
    if ((err = hsm_op_begin(key_management_hdl, HSM_KIND_KEY_MANAGEMENT, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    ks = op.obj->keyStore;
    op_ = args->flags & ops;
    strict = (args->flags & HSM_OP_MANAGE_KEY_FLAGS_STRICT_OPERATION) != 0;
    if (args->flags & ~known) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags 0x%02x has unknown bits",
		fn, (unsigned) args->flags);
	goto done;
    }
    if (op_ != HSM_OP_MANAGE_KEY_FLAGS_IMPORT_UPDATE
	    && op_ != HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE
	    && op_ != HSM_OP_MANAGE_KEY_FLAGS_DELETE) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags must have exactly one of "
		"IMPORT_CREATE, IMPORT_UPDATE and DELETE (got 0x%02x)", fn,
		(unsigned) args->flags);
	goto done;
    }
    if (args->key_identifier == NULL) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "%s: key_identifier is NULL", fn);
	goto done;
    }
    if (op_ == HSM_OP_MANAGE_KEY_FLAGS_DELETE) {
	err = DeleteKey(ks, args, strict);
	goto done;
    }
    create = op_ == HSM_OP_MANAGE_KEY_FLAGS_IMPORT_CREATE;
    if ((err = KeyType(fn, args->key_type, &ti)) != HSM_NO_ERROR
	    || (err = KeyInfo(fn, args->key_info, ti, 1)) != HSM_NO_ERROR) {
	goto done;
    }
    if ((args->flags & roots) == roots) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: PART_UNIQUE_ROOT_KEK and "
		"COMMON_ROOT_KEK cannot both be set", fn);
	goto done;
    }
    if ((args->flags & roots) && args->kek_identifier != 0) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: kek_identifier must be 0 with "
		"a root KEK flag (got 0x%08x)", fn,
		(unsigned) args->kek_identifier);
	goto done;
    }
    if (args->input_size != GCM_IV + ti->size + GCM_TAG) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: input_size is %u, a wrapped %s "
		"key takes %u bytes (IV 12 + key %u + tag 16)", fn,
		(unsigned) args->input_size, ti->name,
		(unsigned) (GCM_IV + ti->size + GCM_TAG), (unsigned) ti->size);
	goto done;
    }
    if (args->input_data == NULL) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "%s: input_data is NULL", fn);
	goto done;
    }
    if (!create && args->key_group != 0) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: key_group must be 0 for an "
		"update (got %u)", fn, (unsigned) args->key_group);
	goto done;
    }

    /* The KEK. */
    if ((kek = hsm_secure_alloc(32)) == NULL
	    || (plain = hsm_secure_alloc(ti->size)) == NULL) {
	err = hsm_fail(HSM_OUT_OF_MEMORY, "%s: no memory", fn);
	goto done;
    }
    if (args->flags & roots) {
	if (hsm_root_kek(op.obj->device,
		(args->flags & HSM_OP_MANAGE_KEY_FLAGS_COMMON_ROOT_KEK) != 0,
		kek) != 0) {
	    err = hsm_fail_ossl("manage_key: deriving the root KEK");
	    goto done;
	}
    } else {
	const HsmKey *k;

	if ((err = hsm_op_key(&op, args->kek_identifier, HSM_USE_KEK, &k))
		!= HSM_NO_ERROR) {
	    goto done;
	}
	memcpy(kek, k->secret, 32);
    }
    if ((err = Unwrap(fn, kek, args->input_data, args->input_size, plain))
	    != HSM_NO_ERROR) {
	goto done;
    }

    /* Where it goes. */
    if (!create) {
	id = *args->key_identifier;
    }
    if ((err = KeyDestination(ks, fn, create, args->key_group, id, ti,
	    args->key_info, &old, &g)) != HSM_NO_ERROR) {
	goto done;
    }
    if ((key = hsm_keystore_new_key(id, ti->type, g->number, args->key_info,
	    plain, ti->size)) == NULL) {
	err = hsm_fail(HSM_OUT_OF_MEMORY, "%s: no memory for the key", fn);
	goto done;
    }
    if (ti->isEc && hsm_ec_from_private(ti, plain, ti->size, &key->pkey) != 0) {
	ERR_clear_error();
	err = hsm_fail(HSM_INVALID_PARAM, "%s: the imported bytes are not a "
		"%s private key (the scalar must be in [1, n-1])", fn, ti->name);
	goto done;
    }
    err = Store(ks, g, key, create, strict, &id);
    key = NULL;
    if ((err == HSM_NO_ERROR || err == HSM_KEY_STORE_COUNTER) && create) {
	*args->key_identifier = id;
    }

  done:
    hsm_keystore_free_key(key);
    hsm_secure_free(kek, 32);
    if (plain != NULL) {
	hsm_secure_free(plain, ti->size);
    }
    return hsm_op_end(&op, err);
}

/* ------------------------------------------------------------------ */
/* Key groups                                                           */
/* ------------------------------------------------------------------ */

/*
 *----------------------------------------------------------------------
 *
 * hsm_manage_key_group --
 *	Locks a group in the cache (reading it, or reserving a place for a
 *	new one), unlocks it, or (STRICT alone or with either) writes its
 *	pending changes.  DELETE is not supported (seed 6.4).
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_manage_key_group(hsm_hdl_t key_management_hdl,
	op_manage_key_group_args_t *args)
{
    static const char fn[] = "manage_key_group";
    const unsigned known = HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_LOCKDOWN
	    | HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_UNLOCK
	    | HSM_OP_MANAGE_KEY_GROUP_FLAGS_DELETE
	    | HSM_OP_MANAGE_KEY_GROUP_FLAGS_STRICT_OPERATION;
    HsmKeyStore *ks;
    HsmGroup *g;
    hsm_err_t err = HSM_NO_ERROR;
    HsmOp op;
    unsigned f;

    hsm_clear_error();
    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: args is NULL", fn);
    }
    if ((err = hsm_op_begin(key_management_hdl, HSM_KIND_KEY_MANAGEMENT, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    ks = op.obj->keyStore;
    f = args->flags;
    if (f & HSM_OP_MANAGE_KEY_GROUP_FLAGS_DELETE) {
	err = hsm_fail(HSM_CMD_NOT_SUPPORTED, "%s: DELETE is not supported "
		"(seed 6.4: \"not supported - delete an existing key group\"); "
		"delete its keys with manage_key", fn);
	goto done;
    }
    if (f & ~known) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags 0x%02x has unknown bits",
		fn, f);
	goto done;
    }
    if ((f & HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_LOCKDOWN)
	    && (f & HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_UNLOCK)) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: CACHE_LOCKDOWN and CACHE_UNLOCK "
		"cannot both be set", fn);
	goto done;
    }
    if (f == 0) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags is 0: no operation", fn);
	goto done;
    }
    if (args->key_group > HSM_MAX_KEY_GROUP) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: key_group is %u, groups are "
		"0..%u", fn, (unsigned) args->key_group, HSM_MAX_KEY_GROUP);
	goto done;
    }
    if (f & HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_LOCKDOWN) {
	if ((err = hsm_keystore_group(ks, args->key_group, 1, &g))
		!= HSM_NO_ERROR) {
	    goto done;
	}
	if (!g->transient) {
	    g->locked = 1;
	}
    }
    g = ks->groups[args->key_group];
    if ((f & HSM_OP_MANAGE_KEY_GROUP_FLAGS_CACHE_UNLOCK) && g != NULL) {
	g->locked = 0;
    }
    if ((f & HSM_OP_MANAGE_KEY_GROUP_FLAGS_STRICT_OPERATION) && g != NULL
	    && g->dirty && !g->transient) {
	err = hsm_keystore_write_group(ks, g);
    }

  done:
    return hsm_op_end(&op, err);
}

/* ------------------------------------------------------------------ */
/* Butterfly key expansion                                              */
/* ------------------------------------------------------------------ */

static int
CurveNid(const HsmKeyTypeInfo *ti)
{
    int nid = EC_curve_nist2nid(ti->group);

    return nid != NID_undef ? nid : OBJ_sn2nid(ti->group);
}

/*
 *----------------------------------------------------------------------
 *
 * Expand --
 *	The expanded private key, mod the order n of the curve:
 *	  explicit certificates: out = k + f_k
 *	  implicit certificates: out = (k + f_k) * hash + pr_v
 *	(inputs are big-endian integers, reduced mod n).
 *
 *----------------------------------------------------------------------
 */

static hsm_err_t
Expand(const HsmKeyTypeInfo *ti, const uint8_t *k, const uint8_t *f,
	const uint8_t *h, const uint8_t *p, uint8_t *out)
{
    EC_GROUP *group = EC_GROUP_new_by_curve_name(CurveNid(ti));
    BN_CTX *ctx = BN_CTX_secure_new();
    BIGNUM *bk, *bf, *bh = NULL, *bp = NULL, *r;
    const BIGNUM *n;
    int ok = 0;

    if (group == NULL || ctx == NULL) {
	EC_GROUP_free(group);
	BN_CTX_free(ctx);
	return hsm_fail_ossl("butterfly_key_expansion");
    }
    n = EC_GROUP_get0_order(group);
    BN_CTX_start(ctx);
    bk = BN_CTX_get(ctx);
    bf = BN_CTX_get(ctx);
    r = BN_CTX_get(ctx);
    if (h != NULL) {
	bh = BN_CTX_get(ctx);
	bp = BN_CTX_get(ctx);
    }
    if (r == NULL || (h != NULL && bp == NULL)
	    || BN_bin2bn(k, (int) ti->size, bk) == NULL
	    || BN_bin2bn(f, (int) ti->size, bf) == NULL
	    || !BN_nnmod(bf, bf, n, ctx)
	    || !BN_mod_add(r, bk, bf, n, ctx)) {
	goto done;
    }
    if (h != NULL) {
	if (BN_bin2bn(h, (int) ti->size, bh) == NULL
		|| BN_bin2bn(p, (int) ti->size, bp) == NULL
		|| !BN_nnmod(bh, bh, n, ctx)
		|| !BN_nnmod(bp, bp, n, ctx)
		|| !BN_mod_mul(r, r, bh, n, ctx)
		|| !BN_mod_add(r, r, bp, n, ctx)) {
	    goto done;
	}
    }
    if (BN_is_zero(r)) {
	BN_CTX_end(ctx);
	BN_CTX_free(ctx);
	EC_GROUP_free(group);
	return hsm_fail(HSM_INVALID_PARAM, "butterfly_key_expansion: the "
		"expanded key is 0 mod n: choose another expansion value");
    }
    ok = BN_bn2binpad(r, out, (int) ti->size) == (int) ti->size;

  done:
    BN_CTX_end(ctx);
    BN_CTX_free(ctx);
    EC_GROUP_free(group);
    return ok ? HSM_NO_ERROR : hsm_fail_ossl("butterfly_key_expansion");
}

/*
 *----------------------------------------------------------------------
 *
 * hsm_butterfly_key_expansion --
 *	Derives a key from a MASTER EC key (seed 6.4.2.5), storing it as a
 *	new key or over a key of the same type, and optionally returns its
 *	public key.
 *
 *----------------------------------------------------------------------
 */

hsm_err_t
hsm_butterfly_key_expansion(hsm_hdl_t key_management_hdl,
	op_butt_key_exp_args_t *args)
{
    static const char fn[] = "butterfly_key_expansion";
    const unsigned known = HSM_OP_BUTTERFLY_KEY_FLAGS_UPDATE
	    | HSM_OP_BUTTERFLY_KEY_FLAGS_CREATE
	    | HSM_OP_BUTTERFLY_KEY_FLAGS_EXPLICIT_CERTIF
	    | HSM_OP_BUTTERFLY_KEY_FLAGS_STRICT_OPERATION;
    const HsmKeyTypeInfo *ti;
    const HsmKey *src;
    HsmKeyStore *ks;
    HsmKey *key = NULL, *old;
    HsmGroup *g;
    uint8_t out[66];
    uint32_t id = 0;
    hsm_err_t err;
    HsmOp op;
    int create, strict, explicitCert;

    hsm_clear_error();
    if (args == NULL) {
	return hsm_fail(HSM_INVALID_ADDRESS, "%s: args is NULL", fn);
    }
    if ((err = hsm_op_begin(key_management_hdl, HSM_KIND_KEY_MANAGEMENT, &op))
	    != HSM_NO_ERROR) {
	return err;
    }
    ks = op.obj->keyStore;
    create = (args->flags & HSM_OP_BUTTERFLY_KEY_FLAGS_CREATE) != 0;
    strict = (args->flags & HSM_OP_BUTTERFLY_KEY_FLAGS_STRICT_OPERATION) != 0;
    explicitCert = (args->flags & HSM_OP_BUTTERFLY_KEY_FLAGS_EXPLICIT_CERTIF)
	    != 0;
    if (args->flags & ~known) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags 0x%02x has unknown bits",
		fn, (unsigned) args->flags);
	goto done;
    }
    if (create == ((args->flags & HSM_OP_BUTTERFLY_KEY_FLAGS_UPDATE) != 0)) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: flags must have exactly one of "
		"CREATE and UPDATE (got 0x%02x)", fn, (unsigned) args->flags);
	goto done;
    }
    if (args->dest_key_identifier == NULL) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "%s: dest_key_identifier is NULL",
		fn);
	goto done;
    }
    if ((err = KeyType(fn, args->key_type, &ti)) != HSM_NO_ERROR) {
	goto done;
    }
    if ((err = hsm_op_key(&op, args->key_identifier, HSM_USE_DERIVE, &src))
	    != HSM_NO_ERROR) {
	goto done;
    }
    if (src->type != ti->type) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: key_type is %s but master key "
		"0x%08x is %s: the expanded key is on the master key's curve",
		fn, ti->name, (unsigned) src->id, src->typeInfo->name);
	goto done;
    }
    if ((err = KeyInfo(fn, args->key_info, ti, 0)) != HSM_NO_ERROR) {
	goto done;
    }
    if (args->expansion_function_value == NULL) {
	err = hsm_fail(HSM_INVALID_ADDRESS, "%s: expansion_function_value is "
		"NULL", fn);
	goto done;
    }
    if (args->expansion_function_value_size != ti->size) {
	err = hsm_fail(HSM_INVALID_PARAM, "%s: expansion_function_value_size "
		"is %u, must be %u for %s", fn,
		(unsigned) args->expansion_function_value_size,
		(unsigned) ti->size, ti->name);
	goto done;
    }
    if (explicitCert) {
	if (args->hash_value != NULL || args->hash_value_size != 0
		|| args->pr_reconstruction_value != NULL
		|| args->pr_reconstruction_value_size != 0) {
	    err = hsm_fail(HSM_INVALID_PARAM, "%s: with explicit certificates "
		    "hash_value and pr_reconstruction_value must be NULL, "
		    "their sizes 0", fn);
	    goto done;
	}
    } else {
	if (args->hash_value == NULL || args->pr_reconstruction_value == NULL) {
	    err = hsm_fail(HSM_INVALID_ADDRESS, "%s: implicit certificates "
		    "need hash_value and pr_reconstruction_value", fn);
	    goto done;
	}
	if (args->hash_value_size != ti->size
		|| args->pr_reconstruction_value_size != ti->size) {
	    err = hsm_fail(HSM_INVALID_PARAM, "%s: hash_value_size is %u and "
		    "pr_reconstruction_value_size %u, both must be %u for %s",
		    fn, (unsigned) args->hash_value_size,
		    (unsigned) args->pr_reconstruction_value_size,
		    (unsigned) ti->size, ti->name);
	    goto done;
	}
    }
    if (args->output_size != 0) {
	if (args->output_size != 2 * ti->size) {
	    err = hsm_fail(HSM_INVALID_PARAM, "%s: output_size is %u, must be 0 "
		    "or %u", fn, (unsigned) args->output_size,
		    (unsigned) (2 * ti->size));
	    goto done;
	}
	if (args->output == NULL) {
	    err = hsm_fail(HSM_INVALID_ADDRESS, "%s: output is NULL", fn);
	    goto done;
	}
    }
    if ((err = Expand(ti, src->secret, args->expansion_function_value,
	    explicitCert ? NULL : args->hash_value,
	    explicitCert ? NULL : args->pr_reconstruction_value, out))
	    != HSM_NO_ERROR) {
	goto done;
    }
    if (!create) {
	id = *args->dest_key_identifier;
    }
    if ((err = KeyDestination(ks, fn, create, args->key_group, id, ti,
	    args->key_info, &old, &g)) != HSM_NO_ERROR) {
	goto done;
    }
    if ((key = hsm_keystore_new_key(id, ti->type, g->number, args->key_info,
	    out, ti->size)) == NULL) {
	err = hsm_fail(HSM_OUT_OF_MEMORY, "%s: no memory for the key", fn);
	goto done;
    }
    if ((err = hsm_keystore_pkey(key)) != HSM_NO_ERROR) {
	goto done;
    }
    if (args->output_size != 0 && hsm_ec_public_bytes(ti, key->pkey,
	    args->output, args->output_size) != 0) {
	err = hsm_fail_ossl("butterfly_key_expansion: public key output");
	goto done;
    }
    err = Store(ks, g, key, create, strict, &id);
    key = NULL;
    if ((err == HSM_NO_ERROR || err == HSM_KEY_STORE_COUNTER) && create) {
	*args->dest_key_identifier = id;
    }

  done:
    OPENSSL_cleanse(out, sizeof(out));
    hsm_keystore_free_key(key);
    return hsm_op_end(&op, err);
}
