/*
 * json.c: any protobuf-c message as JSON, walking its descriptor, for
 * `agencysim --dump-subject`. Field names as in the .proto, every field
 * printed (defaults included, so a reader sees the whole shape), 64-bit
 * integers as plain numbers, enums by name, a oneof only when set.
 */
#include <event2/buffer.h>
#include <inttypes.h>
#include <stdio.h>

#include "sim.h"
#include "util.h"

static void message(struct evbuffer *out, const ProtobufCMessage *m, int depth);

static void
indent(struct evbuffer *out, int depth)
{
	evbuffer_add(out, "\n", 1);
	for (int i = 0; i < depth; i++)
		evbuffer_add(out, "  ", 2);
}

static void
scalar(struct evbuffer *out, const ProtobufCFieldDescriptor *f, const void *p,
    int depth)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		evbuffer_add_printf(out, "%" PRId32, *(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		evbuffer_add_printf(out, "%" PRIu32, *(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		evbuffer_add_printf(out, "%" PRId64, *(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		evbuffer_add_printf(out, "%" PRIu64, *(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		evbuffer_add_printf(out, "%g", (double)*(const float *)p);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		evbuffer_add_printf(out, "%g", *(const double *)p);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		evbuffer_add_printf(out, "%s",
		    *(const protobuf_c_boolean *)p ? "true" : "false");
		break;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *v =
		    protobuf_c_enum_descriptor_get_value(
			f->descriptor, *(const int *)p);

		if (v != NULL)
			ck_json_str(out, v->name);
		else
			evbuffer_add_printf(out, "%d", *(const int *)p);
		break;
	}
	case PROTOBUF_C_TYPE_STRING:
		ck_json_str(
		    out, *(char *const *)p != NULL ? *(char *const *)p : "");
		break;
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *b = p;
		char hex[2 * 64 + 1];

		/* short values only: these messages carry no real blobs */
		ck_hex(b->data, b->len < 64 ? b->len : 64, hex);
		ck_json_str(out, hex);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		message(out, *(ProtobufCMessage *const *)p, depth);
		break;
	}
}

static size_t
elem_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

static void
message(struct evbuffer *out, const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d;
	bool first = true;

	if (m == NULL) {
		evbuffer_add_printf(out, "null");
		return;
	}
	d = m->descriptor;
	evbuffer_add(out, "{", 1);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const uint8_t *base = (const uint8_t *)m;
		const void *p = base + f->offset;

		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
			uint32_t c =
			    *(const uint32_t *)(base + f->quantifier_offset);

			if (c != f->id)
				continue;
		}
		evbuffer_add_printf(out, "%s", first ? "" : ",");
		first = false;
		indent(out, depth + 1);
		evbuffer_add_printf(out, "\"%s\": ", f->name);
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n =
			    *(const size_t *)(base + f->quantifier_offset);
			const uint8_t *arr = *(const uint8_t *const *)p;

			evbuffer_add(out, "[", 1);
			for (size_t k = 0; k < n; k++) {
				if (k > 0)
					evbuffer_add(out, ",", 1);
				indent(out, depth + 2);
				scalar(
				    out, f, arr + k * elem_size(f), depth + 2);
			}
			if (n > 0)
				indent(out, depth + 1);
			evbuffer_add(out, "]", 1);
		} else {
			scalar(out, f, p, depth + 1);
		}
	}
	if (!first)
		indent(out, depth);
	evbuffer_add(out, "}", 1);
}

void
sim_json_print(FILE *fp, const ProtobufCMessage *msg)
{
	struct evbuffer *out = evbuffer_new();
	size_t len;
	unsigned char *p;

	if (out == NULL)
		return;
	message(out, msg, 0);
	evbuffer_add(out, "\n", 1);
	len = evbuffer_get_length(out);
	p = evbuffer_pullup(out, -1);
	if (p != NULL)
		fwrite(p, 1, len, fp);
	evbuffer_free(out);
}
