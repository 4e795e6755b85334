# bash completion for ossec-ar(8): its commands, their options, and for
# unblock the addresses that `ossec-ar list` shows.  Installed by make
# install and the packages as .../bash-completion/completions/ossec-ar,
# where bash-completion loads it from when ossec-ar is first completed; it
# needs nothing of bash-completion's own functions.

# The addresses of the blocks that ossec-ar ($1, as typed) lists: the first
# column after the header, "no blocks" and the notes left out.  Nothing
# where it cannot run (not root).
_ossec_ar_blocked() {
    "$1" list 2>/dev/null | while read -r address _; do
        case $address in
            ADDRESS|note:|no) ;;
            *) printf '%s\n' "$address" ;;
        esac
    done
}

_ossec_ar() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="status list unblock restore expire metrics firewalld-setup relink adopt hand-over fleet"
    local command="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -*) ;;
            *) command=${COMP_WORDS[i]}; break ;;
        esac
    done
    COMPREPLY=()
    case $prev in
        --output) COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
        --older-than) return 0 ;;           # a duration: 600, 30m, 12h, 7d
        --since|--wait|--agent|--address) return 0 ;;   # fleet's own values
    esac
    if [ -z "$command" ]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "--json --help --version" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        fi
        return 0
    fi
    local options="--json --help"
    case $command in
        restore) options="$options --since-boot --dry-run" ;;
        expire) options="$options --older-than --dry-run" ;;
        hand-over) options="$options --dry-run" ;;
        metrics) options="--help --output" ;;
        fleet)
            # fleet [options], or fleet unblock IP (--agent ID | --everywhere).
            if [[ " ${COMP_WORDS[*]:i+1:COMP_CWORD-i-1} " == *" unblock "* ]]; then
                options="$options --agent --everywhere --wait --since"
            elif [[ $cur != -* ]]; then
                COMPREPLY=($(compgen -W "unblock" -- "$cur"))
                return 0
            else
                options="$options --all --agent --address --since"
            fi ;;
        unblock)
            if [[ $cur != -* ]]; then
                _ossec_ar_address
                return 0
            fi ;;
    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
    fi
    return 0
}

# unblock's address.  An IPv6 address holds colons, where bash splits
# words (COMP_WORDBREAKS): the word is taken from the line itself, and each
# answer given from after the last colon typed, as bash will insert it.
_ossec_ar_address() {
    local line=${COMP_LINE:0:COMP_POINT}
    local word=${line##*[[:space:]]}
    local typed=""
    if [[ $word == *:* && $COMP_WORDBREAKS == *:* ]]; then
        typed=${word%"${word##*:}"}
    fi
    local address
    for address in $(_ossec_ar_blocked "${COMP_WORDS[0]}"); do
        if [[ $address == "$word"* ]]; then
            COMPREPLY+=("${address#"$typed"}")
        fi
    done
}

complete -F _ossec_ar ossec-ar
