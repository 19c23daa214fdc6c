/*
 * hsm_spps.h --
 *
 *	spps extensions to the engine's public API (hsm_api.h) for the
 *	device lifecycle, which the seed names (HSM_INVALID_LIFECYCLE,
 *	chip_life_cycle, the signed message of the root KEK export) but does
 *	not say how to change.  docs/ENGINE.md, "Sessions, key stores and key
 *	management", has the whole story.
 */

#ifndef SPPS_HSM_SPPS_H
#define SPPS_HSM_SPPS_H

#include <stddef.h>
#include <stdint.h>

#include "hsm_api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Lifecycle values reported by hsm_get_info (NXP's LMDA values). */
#define HSM_SPPS_LIFECYCLE_OEM_OPEN   ((uint16_t) 0x10)
#define HSM_SPPS_LIFECYCLE_OEM_CLOSED ((uint16_t) 0x40)

/*
 * The message the owner signs (ECDSA P-256, SHA-256, signature r || s of
 * 64 bytes) to authorize a root KEK export in OEM_CLOSED:
 *     HSM_SPPS_ROOT_KEK_EXPORT_LABEL (23 bytes, no NUL) || chip unique id
 *     (8 bytes, as hsm_get_info returns it) || flags (1 byte)
 */
#define HSM_SPPS_ROOT_KEK_EXPORT_LABEL "spps root kek export v1"

/*
 * hsm_spps_close_lifecycle --
 *	Moves the session's HSM from OEM_OPEN to OEM_CLOSED for good, with
 *	the owner's P-256 public key (x || y, 64 bytes): from then on a root
 *	KEK export needs the owner's signature.  A strict operation (the
 *	monotonic counter moves).  HSM_INVALID_LIFECYCLE if the HSM is not in
 *	OEM_OPEN, HSM_INVALID_PARAM if the key is not a P-256 point.
 */
hsm_err_t hsm_spps_close_lifecycle(hsm_hdl_t session_hdl,
	const uint8_t *owner_xy, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* SPPS_HSM_SPPS_H */
