/*
 * proto_fpe.c --
 *
 *	FlashPro Express's own files (proto_fpe.h; docs/FORMATS.md, "FlashPro
 *	Express project" and "FlashPro Express settings").  Both are two
 *	envelopes: an outer DIGEST one that names the HSM server, and inside
 *	it a MAC one under a key of that server's HSM, so a reader knows
 *	which HSM to ask for the key before it can check anything else.
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "proto.h"
#include "proto_int.h"
#include "proto_fpe.h"

#define MAX_ACTIONS 4096
#define MAX_SETTINGS 256

/* Outer envelope, both files. */
enum { OUT_SERVER = 1, OUT_INNER = 2, OUT_MODE = 3 };
/* Project. */
enum { PRJ_NAME = 1, PRJ_SOURCE = 2, PRJ_JOB = 3, PRJ_JOB_DIGEST = 4,
       PRJ_SERVER = 5, PRJ_MHSM = 6, PRJ_CREATED = 7, PRJ_SAVED = 8,
       PRJ_ACTION = 9, PRJ_SETTING = 10 };
enum { ACT_DEVICE = 1, ACT_ACTION = 2, ACT_ENABLED = 3 };
enum { KV_NAME = 1, KV_VALUE = 2 };
/* Settings (inner). */
enum { SET_SERVER = 1, SET_MHSM = 2, SET_TYPE_U = 3, SET_FTP_USER = 4,
       SET_FTP_SEALED = 5, SET_UPDATED = 6 };

/*
 * Dup --
 *	A malloc'ed copy of a string (NULL stays NULL).
 */
static char *
Dup(const char *s)
{
    size_t n;
    char *d;

    if (s == NULL) {
	return NULL;
    }
    n = strlen(s) + 1;
    if ((d = malloc(n)) != NULL) {
	memcpy(d, s, n);
    }
    return d;
}

/*
 *----------------------------------------------------------------------
 *
 * WriteOuter --
 *	The inner record in a MAC envelope (compressed if asked), wrapped in
 *	the outer DIGEST envelope with the server name (and mode).
 *
 *----------------------------------------------------------------------
 */

static int
WriteOuter(ProtoFileType type, const char *server, const char *mode,
	const ProtoBuf *inner, int compress, const uint8_t *macKey,
	uint8_t **image, size_t *len, ProtoError *err)
{
    ProtoBuf outer;
    uint8_t *innerImage = NULL;
    size_t innerLen = 0;
    int rc = -1;

    *image = NULL;
    *len = 0;
    proto_buf_init(&outer);
    if (inner != NULL) {
	if (inner->failed) {
	    return proto_err(err, "%s: cannot encode (out of memory)",
		    proto_file_type_name(type));
	}
	if (proto_container_write(type, PROTO_AUTH_MAC, compress, inner->data,
		inner->len, macKey, NULL, NULL, &innerImage, &innerLen,
		err) != 0) {
	    return -1;
	}
	proto_put_str(&outer, OUT_SERVER, server);
	proto_put_bytes(&outer, OUT_INNER, innerImage, innerLen);
    }
    if (mode != NULL) {
	proto_put_str(&outer, OUT_MODE, mode);
    }
    if (outer.failed) {
	proto_err(err, "%s: cannot encode (out of memory)",
		proto_file_type_name(type));
    } else {
	rc = proto_container_write(type, PROTO_AUTH_DIGEST, 0, outer.data,
		outer.len, NULL, NULL, NULL, image, len, err);
    }
    free(innerImage);
    proto_buf_free(&outer);
    return rc;
}

/*
 *----------------------------------------------------------------------
 *
 * ReadOuter --
 *	Checks the outer envelope; gives the server (NULL if none), the
 *	mode (if asked; NULL if none) and, if macKey is given, checks and
 *	opens the inner envelope into *inner.
 *
 *----------------------------------------------------------------------
 */

static int
ReadOuter(ProtoFileType type, const uint8_t *image, size_t len,
	const char *what, size_t maxBody, const uint8_t *macKey, char **server,
	char **mode, ProtoContainer *inner, ProtoError *err)
{
    ProtoContainer outer;
    ProtoRec rec;
    ProtoItem item;
    int rc = -1, has;

    *server = NULL;
    if (mode != NULL) {
	*mode = NULL;
    }
    memset(&outer, 0, sizeof(outer));
    if (proto_container_read(image, len, type, NULL, maxBody, what, &outer,
	    err) != 0) {
	return -1;
    }
    if (outer.auth != PROTO_AUTH_DIGEST) {
	proto_err(err, "%s: unexpected authentication kind", what);
	goto done;
    }
    if (proto_rec_open(&rec, outer.body, outer.bodyLen, err, "%s", what) != 0
	    || (has = proto_rec_item(&rec, OUT_INNER, "content",
		    PROTO_F_OPTIONAL, &item)) < 0
	    || (has && proto_rec_str(&rec, OUT_SERVER, "server",
		    PROTO_F_NONEMPTY, PROTO_MAX_NAME, server) < 0)
	    || (mode != NULL && proto_rec_str(&rec, OUT_MODE, "mode",
		    PROTO_F_OPTIONAL, PROTO_MAX_NAME, mode) < 0)) {
	goto done;
    }
    if (macKey != NULL) {
	if (!has) {
	    proto_err(err, "%s: it holds no content", what);
	    goto done;
	}
	if (proto_container_read(item.val, item.len, type, macKey, maxBody,
		what, inner, err) != 0) {
	    goto done;
	}
	if (inner->auth != PROTO_AUTH_MAC) {
	    proto_container_free(inner);
	    proto_err(err, "%s: unexpected authentication kind", what);
	    goto done;
	}
    }
    rc = 0;
  done:
    if (rc != 0) {
	free(*server);
	*server = NULL;
	if (mode != NULL) {
	    free(*mode);
	    *mode = NULL;
	}
    }
    proto_container_free(&outer);
    return rc;
}

/*
 *----------------------------------------------------------------------
 *
 * Project.
 *
 *----------------------------------------------------------------------
 */

/*
 * fpe_project_encode --
 *	Encodes a project (docs/FORMATS.md, "FlashPro Express project").
 */
int
fpe_project_encode(const FpeProject *p, ProtoBuf *out)
{
    size_t i, mark;

    proto_put_str(out, PRJ_NAME, p->name);
    proto_put_str(out, PRJ_SOURCE, p->jobSource ? p->jobSource : "");
    proto_put_bytes(out, PRJ_JOB, p->job, p->jobLen);
    proto_put_bytes(out, PRJ_JOB_DIGEST, p->jobDigest, PROTO_DIGEST);
    proto_put_str(out, PRJ_SERVER, p->server);
    proto_put_str(out, PRJ_MHSM, p->mhsmUuid);
    proto_put_u64(out, PRJ_CREATED, p->created);
    proto_put_u64(out, PRJ_SAVED, p->saved);
    for (i = 0; i < p->nActions; i++) {
	mark = proto_begin(out, PRJ_ACTION);
	proto_put_str(out, ACT_DEVICE, p->actions[i].device);
	proto_put_str(out, ACT_ACTION, p->actions[i].action);
	proto_put_u8(out, ACT_ENABLED, p->actions[i].enabled ? 1 : 0);
	proto_end(out, mark);
    }
    for (i = 0; i < p->nSettings; i++) {
	mark = proto_begin(out, PRJ_SETTING);
	proto_put_str(out, KV_NAME, p->settings[i].name);
	proto_put_str(out, KV_VALUE, p->settings[i].value);
	proto_end(out, mark);
    }
    return out->failed ? -1 : 0;
}

/*
 * fpe_project_free --
 *	Frees a project's members.
 */
void
fpe_project_free(FpeProject *p)
{
    size_t i;

    free(p->name);
    free(p->jobSource);
    free(p->job);
    free(p->server);
    for (i = 0; i < p->nActions; i++) {
	free(p->actions[i].device);
	free(p->actions[i].action);
    }
    free(p->actions);
    for (i = 0; i < p->nSettings; i++) {
	free(p->settings[i].name);
	free(p->settings[i].value);
    }
    free(p->settings);
    memset(p, 0, sizeof(*p));
}

/*
 * fpe_project_decode --
 *	Decodes a project, refusing duplicate devices or settings.
 */
int
fpe_project_decode(const uint8_t *body, size_t len, FpeProject *p,
	ProtoError *err)
{
    ProtoRec rec, sub;
    ProtoReader r;
    ProtoItem item;
    size_t n, i;

    memset(p, 0, sizeof(*p));
    if (proto_rec_open(&rec, body, len, err, "FlashPro Express project") != 0
	    || proto_rec_str(&rec, PRJ_NAME, "name", PROTO_F_NONEMPTY,
		    PROTO_MAX_NAME, &p->name) < 0
	    || proto_rec_str(&rec, PRJ_SOURCE, "job source", 0, PROTO_MAX_TEXT,
		    &p->jobSource) < 0
	    || proto_rec_bytes(&rec, PRJ_JOB, "job", PROTO_F_NONEMPTY,
		    PROTO_MAX_BODY, &p->job, &p->jobLen) < 0
	    || proto_rec_fixed(&rec, PRJ_JOB_DIGEST, "job digest", p->jobDigest,
		    PROTO_DIGEST) < 0
	    || proto_rec_str(&rec, PRJ_SERVER, "server", PROTO_F_NONEMPTY,
		    PROTO_MAX_NAME, &p->server) < 0
	    || proto_rec_uuid(&rec, PRJ_MHSM, "M-HSM", 0, p->mhsmUuid) < 0
	    || proto_rec_u64(&rec, PRJ_CREATED, "created", &p->created) < 0
	    || proto_rec_u64(&rec, PRJ_SAVED, "saved", &p->saved) < 0
	    || proto_rec_repeat(&rec, PRJ_ACTION, "actions", MAX_ACTIONS,
		    &n) != 0) {
	goto error;
    }
    if (n > 0 && (p->actions = calloc(n, sizeof(*p->actions))) == NULL) {
	proto_rec_fail(&rec, "no memory");
	goto error;
    }
    proto_reader_init(&r, rec.data, rec.len);
    for (i = 0; i < n && proto_rec_next(&r, PRJ_ACTION, &item); i++) {
	FpeDeviceAction *a = &p->actions[i];

	p->nActions = i + 1;
	if (proto_rec_sub(&sub, &rec, &item, "action", i + 1) != 0
		|| proto_rec_str(&sub, ACT_DEVICE, "device", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &a->device) < 0
		|| proto_rec_str(&sub, ACT_ACTION, "action", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &a->action) < 0
		|| proto_rec_bool(&sub, ACT_ENABLED, "enabled", &a->enabled) < 0) {
	    goto error;
	}
    }
    if (proto_rec_repeat(&rec, PRJ_SETTING, "settings", MAX_SETTINGS, &n) != 0) {
	goto error;
    }
    if (n > 0 && (p->settings = calloc(n, sizeof(*p->settings))) == NULL) {
	proto_rec_fail(&rec, "no memory");
	goto error;
    }
    proto_reader_init(&r, rec.data, rec.len);
    for (i = 0; i < n && proto_rec_next(&r, PRJ_SETTING, &item); i++) {
	FpeSetting *s = &p->settings[i];

	p->nSettings = i + 1;
	if (proto_rec_sub(&sub, &rec, &item, "setting", i + 1) != 0
		|| proto_rec_str(&sub, KV_NAME, "name", PROTO_F_NONEMPTY,
			PROTO_MAX_NAME, &s->name) < 0
		|| proto_rec_str(&sub, KV_VALUE, "value", 0, PROTO_MAX_VALUE,
			&s->value) < 0) {
	    goto error;
	}
    }
    if ((p->nActions > 1 && proto_rec_unique_names(&rec,
	    (char *const *) &p->actions[0].device, sizeof(*p->actions),
	    p->nActions, "actions") != 0)
	    || (p->nSettings > 1 && proto_rec_unique_names(&rec,
		    (char *const *) &p->settings[0].name, sizeof(*p->settings),
		    p->nSettings, "settings") != 0)) {
	goto error;
    }
    return 0;
  error:
    fpe_project_free(p);
    return -1;
}

/*
 * fpe_project_write --
 *	The project file: its record, compressed and MACed, in the outer
 *	envelope naming its server.
 */
int
fpe_project_write(const FpeProject *p, const uint8_t macKey[32],
	uint8_t **image, size_t *len, ProtoError *err)
{
    ProtoBuf inner;
    int rc;

    proto_buf_init(&inner);
    fpe_project_encode(p, &inner);
    rc = WriteOuter(PROTO_FILE_FPE_PROJECT, p->server, NULL, &inner, 1, macKey,
	    image, len, err);
    proto_buf_free(&inner);
    return rc;
}

/*
 * fpe_project_server --
 *	The server a project file names (outer envelope only: nothing else
 *	is trusted before the MAC is checked).
 */
int
fpe_project_server(const uint8_t *image, size_t len, const char *what,
	char **server, ProtoError *err)
{
    if (ReadOuter(PROTO_FILE_FPE_PROJECT, image, len, what, FPE_MAX_PROJECT,
	    NULL, server, NULL, NULL, err) != 0) {
	return -1;
    }
    if (*server == NULL) {
	return proto_err(err, "%s: it holds no project", what);
    }
    return 0;
}

/*
 * fpe_project_read --
 *	Reads a project file: both envelopes, the record, the server named
 *	twice, the job's digest.
 */
int
fpe_project_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t macKey[32], FpeProject *p, ProtoError *err)
{
    ProtoContainer inner;
    uint8_t digest[PROTO_DIGEST];
    char *server = NULL;
    int rc;

    memset(p, 0, sizeof(*p));
    memset(&inner, 0, sizeof(inner));
    if (ReadOuter(PROTO_FILE_FPE_PROJECT, image, len, what, FPE_MAX_PROJECT,
	    macKey, &server, NULL, &inner, err) != 0) {
	return -1;
    }
    rc = fpe_project_decode(inner.body, inner.bodyLen, p, err);
    proto_container_free(&inner);
    if (rc == 0 && strcmp(server, p->server) != 0) {
	rc = proto_err(err, "%s: the server named outside is not the one "
		"inside", what);
    }
    if (rc == 0 && (proto_sha384(p->job, p->jobLen, digest) != 0
	    || memcmp(digest, p->jobDigest, PROTO_DIGEST) != 0)) {
	rc = proto_err(err, "%s: the job it holds is not the one it was made "
		"from", what);
    }
    if (rc != 0 && p->name != NULL) {
	fpe_project_free(p);
    }
    free(server);
    return rc;
}

/*
 * fpe_project_set --
 *	Sets a setting of the project.
 */
int
fpe_project_set(FpeProject *p, const char *name, const char *value)
{
    FpeSetting *grown;
    char *v;
    size_t i;

    if ((v = Dup(value)) == NULL) {
	return -1;
    }
    for (i = 0; i < p->nSettings; i++) {
	if (strcmp(p->settings[i].name, name) == 0) {
	    free(p->settings[i].value);
	    p->settings[i].value = v;
	    return 0;
	}
    }
    if (p->nSettings == MAX_SETTINGS || (grown = realloc(p->settings,
	    (p->nSettings + 1) * sizeof(*p->settings))) == NULL) {
	free(v);
	return -1;
    }
    p->settings = grown;
    if ((grown[p->nSettings].name = Dup(name)) == NULL) {
	free(v);
	return -1;
    }
    grown[p->nSettings++].value = v;
    return 0;
}

/*
 * fpe_project_get --
 *	A setting's value, or NULL.
 */
const char *
fpe_project_get(const FpeProject *p, const char *name)
{
    size_t i;

    for (i = 0; i < p->nSettings; i++) {
	if (strcmp(p->settings[i].name, name) == 0) {
	    return p->settings[i].value;
	}
    }
    return NULL;
}

/*
 *----------------------------------------------------------------------
 *
 * Settings.
 *
 *----------------------------------------------------------------------
 */

/*
 * fpe_settings_aad --
 *	The AAD of the sealed FTP password: the other settings, so the
 *	password cannot be moved to other settings.
 */
int
fpe_settings_aad(const FpeSettings *s, ProtoBuf *out)
{
    proto_put_str(out, PROTO_TAG_CONTEXT, "spps fpexpress ftp password v1");
    proto_put_str(out, SET_SERVER, s->server ? s->server : "");
    proto_put_str(out, SET_MHSM, s->mhsmUuid);
    proto_put_u8(out, SET_TYPE_U, s->hsmTypeU ? 1 : 0);
    proto_put_str(out, SET_FTP_USER, s->ftpUser ? s->ftpUser : "");
    return out->failed ? -1 : 0;
}

/*
 * fpe_settings_write --
 *	The settings file (docs/FORMATS.md, "FlashPro Express settings").
 */
int
fpe_settings_write(const FpeSettings *s, const uint8_t macKey[32],
	uint8_t **image, size_t *len, ProtoError *err)
{
    ProtoBuf inner;
    int rc, hasServer = s->server != NULL && s->server[0] != '\0';

    if (hasServer && macKey == NULL) {
	return proto_err(err, "FlashPro Express settings: no key to "
		"authenticate them");
    }
    proto_buf_init(&inner);
    if (hasServer) {
	proto_put_str(&inner, SET_SERVER, s->server);
	if (s->mhsmUuid[0] != '\0') {
	    proto_put_str(&inner, SET_MHSM, s->mhsmUuid);
	}
	proto_put_u8(&inner, SET_TYPE_U, s->hsmTypeU ? 1 : 0);
	if (s->ftpUser != NULL) {
	    proto_put_str(&inner, SET_FTP_USER, s->ftpUser);
	}
	if (s->ftpSealed != NULL) {
	    proto_put_bytes(&inner, SET_FTP_SEALED, s->ftpSealed,
		    s->ftpSealedLen);
	}
	proto_put_u64(&inner, SET_UPDATED, s->updated);
    }
    rc = WriteOuter(PROTO_FILE_SETTINGS, s->server, s->mode,
	    hasServer ? &inner : NULL, 0, macKey, image, len, err);
    proto_buf_free(&inner);
    return rc;
}

/*
 * fpe_settings_server --
 *	The server and mode a settings file names (outer envelope).
 */
int
fpe_settings_server(const uint8_t *image, size_t len, const char *what,
	char **server, char **mode, ProtoError *err)
{
    return ReadOuter(PROTO_FILE_SETTINGS, image, len, what, FPE_MAX_SETTINGS,
	    NULL, server, mode, NULL, err);
}

/*
 * fpe_settings_read --
 *	Reads the settings file: both envelopes and the record.
 */
int
fpe_settings_read(const uint8_t *image, size_t len, const char *what,
	const uint8_t macKey[32], FpeSettings *s, ProtoError *err)
{
    ProtoContainer inner;
    ProtoRec rec;
    char *server = NULL;
    int rc = -1;

    memset(s, 0, sizeof(*s));
    memset(&inner, 0, sizeof(inner));
    if (ReadOuter(PROTO_FILE_SETTINGS, image, len, what, FPE_MAX_SETTINGS,
	    macKey, &server, &s->mode, &inner, err) != 0) {
	return -1;
    }
    if (proto_rec_open(&rec, inner.body, inner.bodyLen, err, "%s", what) != 0
	    || proto_rec_str(&rec, SET_SERVER, "server", PROTO_F_NONEMPTY,
		    PROTO_MAX_NAME, &s->server) < 0
	    || proto_rec_uuid(&rec, SET_MHSM, "M-HSM", PROTO_F_OPTIONAL,
		    s->mhsmUuid) < 0
	    || proto_rec_bool(&rec, SET_TYPE_U, "hsm_type_u", &s->hsmTypeU) < 0
	    || proto_rec_str(&rec, SET_FTP_USER, "ftp user", PROTO_F_OPTIONAL,
		    PROTO_MAX_NAME, &s->ftpUser) < 0
	    || proto_rec_bytes(&rec, SET_FTP_SEALED, "ftp password",
		    PROTO_F_OPTIONAL, 4096, &s->ftpSealed, &s->ftpSealedLen) < 0
	    || proto_rec_u64(&rec, SET_UPDATED, "updated", &s->updated) < 0) {
	goto done;
    }
    if (strcmp(server, s->server) != 0) {
	proto_err(err, "%s: the server named outside is not the one inside",
		what);
	goto done;
    }
    rc = 0;
  done:
    if (rc != 0) {
	fpe_settings_free(s);
    }
    proto_container_free(&inner);
    free(server);
    return rc;
}

/*
 * fpe_settings_free --
 *	Frees settings, cleansing the sealed password.
 */
void
fpe_settings_free(FpeSettings *s)
{
    free(s->server);
    free(s->ftpUser);
    if (s->ftpSealed != NULL) {
	OPENSSL_cleanse(s->ftpSealed, s->ftpSealedLen);
	free(s->ftpSealed);
    }
    free(s->mode);
    memset(s, 0, sizeof(*s));
}
