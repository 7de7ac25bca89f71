# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: parsing and serialising libvirt XML with lxml, safely and in one style."""

from __future__ import annotations

import os
import traceback

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError

LXML_IMPORT_ERROR = None
try:
    from lxml import etree
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity test
    etree = None
    LXML_IMPORT_ERROR = traceback.format_exc()


class XMLInputError(UserError, ValueError):
    """XML given by the user (or returned by libvirt) could not be parsed."""


def _parser():
    # No entity expansion, no network access: XML can come from users' variables.
    return etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True,
                           remove_comments=False, huge_tree=False)


def parse_xml(text):
    """Parse an XML document (str or bytes) into an lxml element; raise XMLInputError on bad XML."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    try:
        return etree.fromstring(text, _parser())
    except etree.XMLSyntaxError as exc:
        raise XMLInputError(str(exc)) from exc


def to_string(element):
    """Serialise an element the way libvirt indents its own documents (two spaces)."""
    etree.indent(element, space="  ")
    return etree.tostring(element, encoding="unicode")


# libvirt's RelaxNG schemas, installed with the libvirt library (Debian libvirt0, RHEL libvirt-libs); a build
# from source under /usr/local has them there.
SCHEMA_DIRS = ("/usr/share/libvirt/schemas", "/usr/local/share/libvirt/schemas")
SCHEMA_DIR = next((d for d in SCHEMA_DIRS if os.path.isdir(d)), SCHEMA_DIRS[0])
_SCHEMAS = {}
# Schema files a check needed and this host does not have: the check was left to the daemon (its VALIDATE
# flags, _libvirt.define), and the task says so in a warning (schema_warnings). Never a silent pass.
UNCHECKED = set()


def schema_path(schema):
    """The path of a schema file (a name such as 'network.rng', or a path), or None when it is not installed."""
    path = schema if os.path.isabs(schema) else os.path.join(SCHEMA_DIR, schema)
    if os.path.exists(path):
        return path
    UNCHECKED.add(path)
    return None


def schema_warnings():
    """The warning for the schema checks this process could not make here (and forgets them)."""
    if not UNCHECKED:
        return []
    missing = ", ".join(sorted(UNCHECKED))
    UNCHECKED.clear()
    return ["libvirt's RelaxNG schemas are not installed on this host (%s): values and documents were not checked "
            "against them here; libvirt checked every definition it was given against its own schema "
            "(install the libvirt library's package, libvirt0 or libvirt-libs, to check before any change and in "
            "check mode)" % missing]


class SchemaError(UserError, ValueError):
    """A document the collection is about to write does not validate against libvirt's schema."""


def schema_error(xml, schema):
    """None when ``xml`` validates against libvirt's RelaxNG schema ``schema`` (a file name such as
    'network.rng', or a path); else the validation error. A schema that is not installed here is left to the
    daemon's own check, and recorded (schema_warnings)."""
    path = schema_path(schema)
    if path is None:
        return None
    if path not in _SCHEMAS:
        _SCHEMAS[path] = etree.RelaxNG(file=path)
    checker = _SCHEMAS[path]
    if checker.validate(parse_xml(xml)):
        return None
    return str(checker.error_log.last_error)


_RNG = "http://relaxng.org/ns/structure/1.0"
_VALUE_TYPES = {}  # schema file -> the data types of it that values are checked against
_VALUE_CHECKERS = {}  # schema file -> (types compiled in, the grammar)


def register_value_type(define, schema_file="domaincommon.rng"):
    """Declare (at import time, from a field table) that values are checked against ``define``."""
    _VALUE_TYPES.setdefault(schema_file, set()).add(define)


def _value_checker(schema_file):
    """One RelaxNG grammar per schema file, compiled once per process: its document is
    ``<DEFINE>text</DEFINE>`` for each registered data type, checked by libvirt's own definition."""
    types = frozenset(_VALUE_TYPES.get(schema_file, ()))
    compiled = _VALUE_CHECKERS.get(schema_file)
    if compiled is None or compiled[0] != types:
        path = os.path.join(SCHEMA_DIR, schema_file)
        has_start = etree.parse(path).getroot().find("{%s}start" % _RNG) is not None
        start = "<start><choice>%s</choice></start>" % "".join(
            '<element name="%s"><ref name="%s"/></element>' % (define, define) for define in sorted(types))
        grammar = ('<grammar xmlns="%s" datatypeLibrary="http://www.w3.org/2001/XMLSchema-datatypes">'
                   '<include href="%s">%s</include>%s</grammar>'
                   % (_RNG, path, start if has_start else "", "" if has_start else start))
        compiled = _VALUE_CHECKERS[schema_file] = (types, etree.RelaxNG(etree.fromstring(grammar)))
    return compiled[1]


def schema_value_error(text, define, schema_file="domaincommon.rng"):
    """None when ``text`` is a valid value of libvirt's schema data type ``define``; else the validation error.
    A schema that is not installed here is left to the daemon's check of the document, and recorded."""
    if schema_path(schema_file) is None:
        return None
    register_value_type(define, schema_file)
    checker = _value_checker(schema_file)
    node = etree.Element(define)
    node.text = text
    if checker.validate(node):
        return None
    return str(checker.error_log.last_error)


def validate_schema(xml, schema, what):
    """Raise SchemaError naming ``what`` and the schema when ``xml`` does not validate."""
    error = schema_error(xml, schema)
    if error:
        raise SchemaError("the resulting %s XML does not validate against libvirt's schema (%s): %s"
                          % (what, schema, error))
