#!/usr/bin/env bash
# System packages the full test suite uses to look at the outputs as a user would:
# LibreOffice (prints the forms to PDF), QGIS's Python API (opens the GeoPackage and
# the project), poppler (pdftoppm: renders map PDFs). Installed from Debian as root when
# missing; elsewhere the tests that need them skip with a message.
set -u
need=()
command -v soffice >/dev/null 2>&1 || command -v libreoffice >/dev/null 2>&1 || need+=(libreoffice-calc-nogui)
/usr/bin/python3 -c "import qgis.core" >/dev/null 2>&1 || need+=(python3-qgis qgis-providers)
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)
[ -e /usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf ] || need+=(fonts-liberation2)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: ${need[*]} not installed (needs root and apt-get); the tests that use them will skip" >&2
  exit 0
fi
echo "installing ${need[*]} (Debian packages, for the output tests)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || echo "note: could not install ${need[*]}; the tests that use them will skip" >&2
exit 0
