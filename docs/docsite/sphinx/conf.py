# Sphinx configuration of the kvmfleet.libvirt documentation site, built offline by `bash scripts/run.sh docs`:
# antsibull-docs writes the collection's reST (plugins, roles, the guides of docs/docsite) and Sphinx renders it
# with warnings as errors. Started from `antsibull-docs sphinx-init --use-current --squash-hierarchy`.
"""Sphinx configuration of the kvmfleet.libvirt documentation site."""

import os
import pathlib
import zlib

import ansible
import yaml

project = 'kvmfleet.libvirt'
copyright = 'kvmfleet maintainers'  # pylint: disable=redefined-builtin

title = 'kvmfleet.libvirt documentation'
html_short_title = 'kvmfleet.libvirt'
html_title = 'kvmfleet.libvirt documentation'

extensions = ['sphinx.ext.intersphinx', 'sphinx_antsibull_ext']

pygments_style = 'ansible'
highlight_language = 'YAML+Jinja'

html_theme = 'sphinx_ansible_theme'
html_show_sphinx = False
display_version = False
html_use_smartypants = True
html_use_modindex = False
html_use_index = False
html_copy_source = False

default_role = 'any'
nitpicky = True

# The generated pages link to the Ansible documentation (common return values, configuration settings and their
# environment variables, ansible.builtin plugins). The build is offline: instead of downloading that site's
# objects.inv, one is written from the installed ansible-core, so a reference resolves exactly when the target is
# one the Ansible docs have, and every other unresolved reference still fails the build.
ANSIBLE_DOCS = 'https://docs.ansible.com/projects/ansible/devel/'
ANSIBLE_INVENTORY = '_ansible_devel.inv'
# Labels of the Ansible docs the generated pages and the guides use.
ANSIBLE_LABELS = {
    'common_return_values': ('reference_appendices/common_return_values.html#common-return-values', 'Return Values'),
    'ansible_configuration_settings': ('reference_appendices/config.html#ansible-configuration-settings',
                                       'Ansible Configuration Settings'),
}
PLUGIN_TYPES = ('become', 'cache', 'callback', 'cliconf', 'connection', 'filter', 'httpapi', 'inventory', 'lookup',
                'netconf', 'shell', 'strategy', 'test', 'vars')

intersphinx_mapping = {'ansible_devel': (ANSIBLE_DOCS, ANSIBLE_INVENTORY)}


def ansible_objects():
    """(name, domain:role, uri, display name) of what the Ansible docs hold, read from ansible-core."""
    top = pathlib.Path(ansible.__file__).parent
    objects = [(name, 'std:label', uri, text) for name, (uri, text) in ANSIBLE_LABELS.items()]
    kinds = [('module', top / 'modules')] + [(kind, top / 'plugins' / kind) for kind in PLUGIN_TYPES]
    for kind, folder in kinds:
        names = {p.stem for p in folder.glob('*.py')} | {p.stem for p in folder.glob('*.yml')}
        for name in sorted(n for n in names if not n.startswith('_')):
            objects.append((f'ansible_collections.ansible.builtin.{name}_{kind}', 'std:label',
                            f'collections/ansible/builtin/{name}_{kind}.html#$', f'ansible.builtin.{name} {kind}'))
    settings = yaml.safe_load((top / 'config' / 'base.yml').read_text(encoding='utf-8'))
    for setting in settings.values():
        for env in setting.get('env') or ():
            objects.append((env['name'], 'std:envvar', 'reference_appendices/config.html#envvar-$', '-'))
    return objects


def write_ansible_inventory(srcdir):
    """Write the Ansible docs' inventory (Sphinx's objects.inv format, version 2) into the source directory."""
    lines = ''.join(f'{name} {role} -1 {uri} {text}\n' for name, role, uri, text in ansible_objects())
    header = ('# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n'
              '# The remainder of this file is compressed using zlib.\n')
    with open(os.path.join(srcdir, ANSIBLE_INVENTORY), 'wb') as inventory:
        inventory.write(header.encode('utf-8') + zlib.compress(lines.encode('utf-8')))


def setup(app):
    """Sphinx hook: the inventory exists before intersphinx reads it."""
    write_ansible_inventory(str(app.srcdir))
