/*
 * proto_fpe.h --
 *
 *	FlashPro Express's own files (docs/FORMATS.md, "FlashPro Express
 *	project" and "FlashPro Express settings"): the job project (.pro) and
 *	the per-user settings that set_hsm_params and set_fpexpress_mode
 *	keep.  Plain C: no Tcl, no HSM; the MAC keys come from the caller
 *	(role_mac_key of the M-HSM's HSM).
 *
 *	Conventions are proto.h's.
 */

#ifndef SPPS_PROTO_FPE_H
#define SPPS_PROTO_FPE_H

#include "proto.h"

#define FPE_MAX_PROJECT  (1024u * 1024 * 1024)	/* decompressed */
#define FPE_MAX_SETTINGS (64u * 1024)

/* The action chosen for a device of the job's chain. */
typedef struct FpeDeviceAction {
    char *device;
    char *action;		/* PROGRAM, VERIFY, ERASE, DEVICE_INFO, ... */
    int enabled;
} FpeDeviceAction;

/* A name = value setting (programmer configuration, interface). */
typedef struct FpeSetting {
    char *name, *value;
} FpeSetting;

/*
 * FpeProject --
 *	What create_job_project makes: the job file as received (its U-HSM
 *	signature is checked again at every open), the HSM it was loaded
 *	into, the actions chosen, and settings.
 */
typedef struct FpeProject {
    char *name;			/* MyProgJob */
    char *jobSource;		/* where the job file came from */
    uint8_t *job;		/* the job file image */
    size_t jobLen;
    uint8_t jobDigest[PROTO_DIGEST];	/* SHA-384 of job */
    char *server;		/* -hsm_server_name it was loaded with */
    char mhsmUuid[41];
    uint64_t created, saved;
    size_t nActions;
    FpeDeviceAction *actions;
    size_t nSettings;
    FpeSetting *settings;
} FpeProject;

int fpe_project_encode(const FpeProject *p, ProtoBuf *out);
int fpe_project_decode(const uint8_t *body, size_t len, FpeProject *p,
	ProtoError *err);
/* The file: envelope FPE_PROJECT, MAC under macKey, zlib.  The job digest
 * is checked on reading. */
int fpe_project_write(const FpeProject *p, const uint8_t macKey[32],
	uint8_t **image, size_t *len, ProtoError *err);
int fpe_project_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t macKey[32], FpeProject *p, ProtoError *err);
/* The server a project names, read from the envelope's DIGEST-checked
 * outer part (to know which HSM to ask for the MAC key). */
int fpe_project_server(const uint8_t *image, size_t len, const char *what,
	char **server, ProtoError *err);
void fpe_project_free(FpeProject *p);
/* Sets (or adds) a setting; -1 on allocation failure. */
int fpe_project_set(FpeProject *p, const char *name, const char *value);
const char *fpe_project_get(const FpeProject *p, const char *name);

/*
 * FpeSettings --
 *	FlashPro Express's per-user parameters.  The FTP password is never
 *	kept in clear: ftpSealed is AES-256-GCM under a key of the server's
 *	HSM (the caller seals and opens it), with the other fields' encoding
 *	as AAD (fpe_settings_aad).
 */
typedef struct FpeSettings {
    char *server;		/* "" or NULL: not set */
    char mhsmUuid[41];		/* canonical; "" if not set */
    int hsmTypeU;
    char *ftpUser;		/* NULL if not set */
    uint8_t *ftpSealed;		/* NULL if no password */
    size_t ftpSealedLen;
    char *mode;			/* operator_mode or developer_mode */
    uint64_t updated;
} FpeSettings;

int fpe_settings_aad(const FpeSettings *s, ProtoBuf *out);
/*
 * The file is two envelopes, as Job Manager's: an outer SETTINGS/DIGEST
 * one naming the server and holding the inner SETTINGS/MAC one, under a
 * key of that server's HSM.  With no server, only the outer one (the
 * mode alone).
 */
int fpe_settings_write(const FpeSettings *s, const uint8_t macKey[32],
	uint8_t **image, size_t *len, ProtoError *err);
int fpe_settings_server(const uint8_t *image, size_t len, const char *what,
	char **server, char **mode, ProtoError *err);
int fpe_settings_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t macKey[32], FpeSettings *s, ProtoError *err);
void fpe_settings_free(FpeSettings *s);

#endif /* SPPS_PROTO_FPE_H */
