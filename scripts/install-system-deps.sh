#!/usr/bin/env bash
# Install the missing Debian packages of the lists named on the command line:
#   scripts/install-system-deps.sh run          what `make run` needs (system-packages-run.txt)
#   scripts/install-system-deps.sh run test     what `make test` needs (both lists)
#   scripts/install-system-deps.sh --print run  only print the packages of the lists, one a line
# As root it runs apt-get; otherwise it prints the exact command and fails.
set -euo pipefail
print_only=0
if [[ "${1:-}" == "--print" ]]; then
  print_only=1
  shift
fi
[[ $# -gt 0 ]] || { echo "uso: $0 [--print] run [test]" >&2; exit 2; }
packages=()
for name in "$@"; do
  list="$(dirname "$0")/system-packages-$name.txt"
  [[ -f "$list" ]] || { echo "lista desconhecida: $list" >&2; exit 2; }
  while read -r line; do
    pkg="${line%%#*}"
    pkg="${pkg//[[:space:]]/}"
    [[ -n "$pkg" ]] && packages+=("$pkg")
  done < "$list"
done
if [[ $print_only -eq 1 ]]; then
  printf '%s\n' "${packages[@]}"
  exit 0
fi
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "Faltam pacotes do sistema. Rode:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "Instalando pacotes do sistema: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
