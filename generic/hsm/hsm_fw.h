/*
 * hsm_fw.h --
 *
 *	The engine as seen from inside the security boundary: the interface
 *	for the SPPS roles (generic/roles/), which play the part of the
 *	custom firmware an nShield runs for the U-HSM and M-HSM.  Roles reach
 *	keys and durable state through this header and the public API; the
 *	layers above the roles see neither.
 *
 *	What it adds to the public API:
 *	- firmware key stores, whose ids (>= HSM_FW_KEY_STORE_BASE) the public
 *	  hsm_open_key_store_service refuses, so no host program can open them;
 *	- borrowing a key for an operation the public API does not offer
 *	  (ECDH, HKDF), without the key leaving the engine's memory;
 *	- named durable blobs with the engine's guarantees (encrypted,
 *	  authenticated, atomic, durable, rollback-protected by the counter);
 *	- transactions: a read-modify-write of blobs serialised against every
 *	  other process using the same HSM;
 *	- derivation of device-bound secrets from the fuse.
 */

#ifndef SPPS_HSM_FW_H
#define SPPS_HSM_FW_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "hsm_api.h"

/* Key store ids from here up belong to the firmware. */
#define HSM_FW_KEY_STORE_BASE 0xFFFF0000u

/*
 * hsm_fw_open_key_store --
 *	Opens the firmware key store fwId (0..0xFFFF) of the session's HSM,
 *	creating it on first use, and returns a key store service handle for
 *	the public API (key management, cipher, signature generation, mac).
 */
hsm_err_t hsm_fw_open_key_store(hsm_hdl_t session_hdl, uint16_t fwId,
	hsm_hdl_t *key_store_hdl);

/*
 * hsm_fw_key_use --
 *	Calls fn with the key keyId of the key store service, the device
 *	locked, and returns what fn returns.  The key (its secret bytes and
 *	EVP_PKEY) is valid only during the call: fn must not keep it.
 */
typedef struct HsmFwKey {
    hsm_key_type_t type;
    hsm_key_info_t info;
    const uint8_t *secret;	/* AES key, or EC private scalar */
    size_t secretLen;
    EVP_PKEY *pkey;		/* EC keys, else NULL */
} HsmFwKey;

hsm_err_t hsm_fw_key_use(hsm_hdl_t key_store_hdl, uint32_t keyId,
	hsm_err_t (*fn)(const HsmFwKey *key, void *ctx), void *ctx);

/*
 * Blobs: named firmware objects in the HSM's NVM.  Names are at most 64
 * characters of [A-Za-z0-9._-].  Every write is a strict operation: when
 * hsm_fw_blob_write returns HSM_NO_ERROR the blob is on disk and the
 * monotonic counter has moved past any earlier version, so an older copy
 * of it is refused if ever put back.
 *
 * hsm_fw_blob_read returns HSM_UNKNOWN_ID if there is no such blob; *data
 * is malloc'ed (caller frees; cleanse it if it holds secrets).
 */
hsm_err_t hsm_fw_blob_read(hsm_hdl_t session_hdl, const char *name,
	uint8_t **data, size_t *len);
hsm_err_t hsm_fw_blob_write(hsm_hdl_t session_hdl, const char *name,
	const uint8_t *data, size_t len);
hsm_err_t hsm_fw_blob_delete(hsm_hdl_t session_hdl, const char *name);
/* The names of the blobs starting with prefix, sorted, NULL-terminated
 * malloc'ed array (free with plat_free_list). */
hsm_err_t hsm_fw_blob_list(hsm_hdl_t session_hdl, const char *prefix,
	char ***names);

/*
 * hsm_fw_transaction --
 *	Runs fn holding the HSM's lock against every other thread and process
 *	using it, with a view of the NVM refreshed at the start: blob reads
 *	inside see the latest writes of anyone, and no one else writes until
 *	fn returns.  Blob writes inside are each committed when they return.
 */
hsm_err_t hsm_fw_transaction(hsm_hdl_t session_hdl,
	hsm_err_t (*fn)(hsm_hdl_t session_hdl, void *ctx), void *ctx);

/*
 * hsm_fw_derive --
 *	len bytes derived from the HSM's device secret with HKDF-SHA-384 and
 *	the given label: the same on every call for one HSM, different on
 *	every other HSM.
 */
hsm_err_t hsm_fw_derive(hsm_hdl_t session_hdl, const char *label,
	uint8_t *out, size_t len);

/* hsm_fw_state_dir -- the HSM's state directory (for logs and messages). */
const char *hsm_fw_state_dir(hsm_hdl_t session_hdl);

#endif /* SPPS_HSM_FW_H */
