# -*- coding: utf-8 -*-
# Copyright: kvmfleet.libvirt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private: parsing and serialising libvirt XML with lxml, safely and in one style."""

from __future__ import annotations

import os
import traceback

from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import UserError
from ansible_collections.kvmfleet.libvirt.plugins.module_utils._results import diff as _diff

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


def xml_diff(before, after, header):
    """A --diff entry for a document: both sides serialised the same way, so only real changes show."""
    def side(xml):
        return to_string(parse_xml(xml)) + "\n" if xml else ""
    return _diff(side(before), side(after), header)


SCHEMA_DIR = "/usr/share/libvirt/schemas"
_SCHEMAS = {}


class SchemaError(UserError, ValueError):
    """A document the collection is about to write does not validate against libvirt's schema."""


def schema_error(xml, schema):
    """None when ``xml`` validates against libvirt's RelaxNG schema ``schema`` (a file name such as
    'network.rng', or a path), or when the schema is not installed; else the validation error."""
    path = schema if os.path.isabs(schema) else os.path.join(SCHEMA_DIR, schema)
    if not os.path.exists(path):
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
    """None when ``text`` is a valid value of libvirt's schema data type ``define`` (or the schema is
    not installed here); else the validation error."""
    if not os.path.exists(os.path.join(SCHEMA_DIR, schema_file)):
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
