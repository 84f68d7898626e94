# bash completion for berth                                  -*- shell-script -*-
#
# Generated from `berth --help` (every command and its flags); containers,
# images and volumes are completed by asking berth, with the global flags of
# the command line (--root, --runroot, --config...), so that a test store is
# completed as well as the default one. Source it, or install it as
# /usr/share/bash-completion/completions/berth.

__berth_commands="pull push images inspect history tag rmi save load import login logout create run start stop restart kill rm ps logs wait attach bundle exec top stats port pause unpause update rename cp diff commit export events build builder healthcheck container image system volume network"
__berth_sub_container="create run start stop restart kill rm ls list logs wait attach inspect prune exec top stats port pause unpause update rename cp diff commit export"
__berth_sub_image="ls list pull push inspect history tag rm prune save load import build"
__berth_sub_builder="prune"
__berth_sub_healthcheck="run"
__berth_sub_system="df prune service metrics"
__berth_sub_volume="create ls list inspect rm remove prune export import"
__berth_sub_network="create ls list inspect rm remove prune connect disconnect"
__berth_global_flags="--config --root --runroot --storage-driver --storage-opt --log-level --help --version"
__berth_global_value_flags="--config --root --runroot --storage-driver --storage-opt --log-level"

# __berth_flags KEY: the flags of a command ("run", "container run").
__berth_flags() {
	case $1 in
	"attach") echo "--no-stdin --sig-proxy --help" ;;
	"build") echo "--tag -t --file -f --build-arg --target --no-cache --pull --label --platform --quiet -q --iidfile --network --add-host --secret --output -o --cache-from --cache-to --progress --runtime --help" ;;
	"builder prune") echo "--all -a --force -f --help" ;;
	"healthcheck run") echo "--help" ;;
	"image build") echo "--tag -t --file -f --build-arg --target --no-cache --pull --label --platform --quiet -q --iidfile --network --add-host --secret --output -o --cache-from --cache-to --progress --runtime --help" ;;
	"bundle") echo "--name --interactive -i --tty -t --rm --env -e --env-file --workdir -w --user -u --entrypoint --hostname --read-only --privileged --cap-add --cap-drop --security-opt --memory -m --cpus --pids-limit --ulimit --shm-size --tmpfs --volume -v --mount --volumes-from --label -l --init --stop-signal --stop-timeout --restart --runtime --network --net --ip --network-alias --publish -p --publish-all -P --add-host --dns --log-driver --log-opt --pull --health-cmd --health-interval --health-timeout --health-start-period --health-start-interval --health-retries --health-on-failure --no-healthcheck --help" ;;
	"commit") echo "--message -m --author -a --change -c --pause -p --help" ;;
	"diff") echo " --help" ;;
	"container diff") echo " --help" ;;
	"container attach") echo "--no-stdin --sig-proxy --help" ;;
	"container commit") echo "--message -m --author -a --change -c --pause -p --help" ;;
	"container cp") echo "--archive -a --follow-link -L --quiet -q --help" ;;
	"container create") echo "--name --interactive -i --tty -t --rm --env -e --env-file --workdir -w --user -u --entrypoint --hostname --read-only --privileged --cap-add --cap-drop --security-opt --memory -m --cpus --pids-limit --ulimit --shm-size --tmpfs --volume -v --mount --volumes-from --label -l --init --stop-signal --stop-timeout --restart --runtime --network --net --ip --network-alias --publish -p --publish-all -P --add-host --dns --log-driver --log-opt --pull --health-cmd --health-interval --health-timeout --health-start-period --health-start-interval --health-retries --health-on-failure --no-healthcheck --help" ;;
	"container exec") echo "--detach -d --interactive -i --tty -t --env -e --env-file --user -u --workdir -w --privileged --help" ;;
	"container export") echo "--output -o --help" ;;
	"container inspect") echo "--format -f --type --size -s --help" ;;
	"container kill") echo "--signal -s --help" ;;
	"container logs") echo "--follow -f --tail -n --since --until --timestamps -t --help" ;;
	"container ls") echo "--all -a --quiet -q --no-trunc --filter -f --format --size -s --last -n --latest -l --help" ;;
	"container pause") echo " --help" ;;
	"container port") echo " --help" ;;
	"container prune") echo "--force -f --filter --help" ;;
	"container rename") echo " --help" ;;
	"container restart") echo "--time -t --help" ;;
	"container rm") echo "--force -f --volumes -v --help" ;;
	"container run") echo "--name --interactive -i --tty -t --rm --env -e --env-file --workdir -w --user -u --entrypoint --hostname --read-only --privileged --cap-add --cap-drop --security-opt --memory -m --cpus --pids-limit --ulimit --shm-size --tmpfs --volume -v --mount --volumes-from --label -l --init --stop-signal --stop-timeout --restart --runtime --network --net --ip --network-alias --publish -p --publish-all -P --add-host --dns --log-driver --log-opt --pull --health-cmd --health-interval --health-timeout --health-start-period --health-start-interval --health-retries --health-on-failure --no-healthcheck --detach -d --sig-proxy --help" ;;
	"container start") echo "--attach -a --interactive -i --help" ;;
	"container stats") echo "--all -a --no-stream --no-trunc --format --help" ;;
	"container stop") echo "--time -t --help" ;;
	"container top") echo " --help" ;;
	"container unpause") echo " --help" ;;
	"container update") echo "--memory -m --memory-reservation --memory-swap --cpus --cpu-shares -c --cpu-quota --cpu-period --cpuset-cpus --cpuset-mems --pids-limit --blkio-weight --restart --help" ;;
	"container wait") echo " --help" ;;
	"cp") echo "--archive -a --follow-link -L --quiet -q --help" ;;
	"create") echo "--name --interactive -i --tty -t --rm --env -e --env-file --workdir -w --user -u --entrypoint --hostname --read-only --privileged --cap-add --cap-drop --security-opt --memory -m --cpus --pids-limit --ulimit --shm-size --tmpfs --volume -v --mount --volumes-from --label -l --init --stop-signal --stop-timeout --restart --runtime --network --net --ip --network-alias --publish -p --publish-all -P --add-host --dns --log-driver --log-opt --pull --health-cmd --health-interval --health-timeout --health-start-period --health-start-interval --health-retries --health-on-failure --no-healthcheck --help" ;;
	"events") echo "--since --until --filter -f --format --help" ;;
	"exec") echo "--detach -d --interactive -i --tty -t --env -e --env-file --user -u --workdir -w --privileged --help" ;;
	"export") echo "--output -o --help" ;;
	"history") echo "--human -H --no-trunc --quiet -q --format --help" ;;
	"image history") echo "--human -H --no-trunc --quiet -q --format --help" ;;
	"image import") echo "--change -c --message -m --help" ;;
	"image inspect") echo "--format -f --type --size -s --help" ;;
	"image load") echo "--input -i --quiet -q --help" ;;
	"image ls") echo "--all -a --quiet -q --digests --no-trunc --filter -f --format --help" ;;
	"image prune") echo "--all -a --force -f --help" ;;
	"image pull") echo "--platform --quiet -q --help" ;;
	"image push") echo "--quiet -q --help" ;;
	"image rm") echo "--force -f --all -a --help" ;;
	"image save") echo "--output -o --format --help" ;;
	"image tag") echo " --help" ;;
	"images") echo "--all -a --quiet -q --digests --no-trunc --filter -f --format --help" ;;
	"import") echo "--change -c --message -m --help" ;;
	"inspect") echo "--format -f --type --size -s --help" ;;
	"kill") echo "--signal -s --help" ;;
	"load") echo "--input -i --quiet -q --help" ;;
	"login") echo "--username -u --password -p --password-stdin --help" ;;
	"logout") echo " --help" ;;
	"logs") echo "--follow -f --tail -n --since --until --timestamps -t --help" ;;
	"network connect") echo "--alias --ip --help" ;;
	"network create") echo "--driver -d --subnet --gateway --internal --label --opt -o --ipv6 --help" ;;
	"network disconnect") echo "--force -f --help" ;;
	"network inspect") echo "--format -f --help" ;;
	"network ls") echo "--quiet -q --no-trunc --filter -f --format --help" ;;
	"network prune") echo "--force -f --help" ;;
	"network rm") echo "--force -f --help" ;;
	"pause") echo " --help" ;;
	"port") echo " --help" ;;
	"ps") echo "--all -a --quiet -q --no-trunc --filter -f --format --size -s --last -n --latest -l --help" ;;
	"pull") echo "--platform --quiet -q --help" ;;
	"push") echo "--quiet -q --help" ;;
	"rename") echo " --help" ;;
	"restart") echo "--time -t --help" ;;
	"rm") echo "--force -f --volumes -v --help" ;;
	"rmi") echo "--force -f --all -a --help" ;;
	"run") echo "--name --interactive -i --tty -t --rm --env -e --env-file --workdir -w --user -u --entrypoint --hostname --read-only --privileged --cap-add --cap-drop --security-opt --memory -m --cpus --pids-limit --ulimit --shm-size --tmpfs --volume -v --mount --volumes-from --label -l --init --stop-signal --stop-timeout --restart --runtime --network --net --ip --network-alias --publish -p --publish-all -P --add-host --dns --log-driver --log-opt --pull --health-cmd --health-interval --health-timeout --health-start-period --health-start-interval --health-retries --health-on-failure --no-healthcheck --detach -d --sig-proxy --help" ;;
	"save") echo "--output -o --format --help" ;;
	"start") echo "--attach -a --interactive -i --help" ;;
	"stats") echo "--all -a --no-stream --no-trunc --format --help" ;;
	"stop") echo "--time -t --help" ;;
	"system df") echo "--format --help" ;;
	"system service") echo "--time -t --runtime --help" ;;
	"system metrics") echo "--listen --help" ;;
	"system prune") echo "--all -a --force -f --volumes --help" ;;
	"tag") echo " --help" ;;
	"top") echo " --help" ;;
	"unpause") echo " --help" ;;
	"update") echo "--memory -m --memory-reservation --memory-swap --cpus --cpu-shares -c --cpu-quota --cpu-period --cpuset-cpus --cpuset-mems --pids-limit --blkio-weight --restart --help" ;;
	"volume create") echo "--driver -d --label -l --opt -o --help" ;;
	"volume export") echo "--output -o --help" ;;
	"volume import") echo " --help" ;;
	"volume inspect") echo "--format -f --help" ;;
	"volume ls") echo "--quiet -q --filter -f --format --help" ;;
	"volume prune") echo "--all -a --force -f --filter --help" ;;
	"volume rm") echo "--force -f --help" ;;
	"wait") echo " --help" ;;
	esac
}

# __berth_value_flags KEY: the flags of a command that take a value.
__berth_value_flags() {
	case $1 in
	"build") echo "--tag -t --file -f --build-arg --target --label --platform --iidfile --network --add-host --secret --output -o --cache-from --cache-to --progress --runtime" ;;
	"image build") echo "--tag -t --file -f --build-arg --target --label --platform --iidfile --network --add-host --secret --output -o --cache-from --cache-to --progress --runtime" ;;
	"bundle") echo "--name --env -e --env-file --workdir -w --user -u --entrypoint --hostname --cap-add --cap-drop --security-opt --memory -m --cpus --pids-limit --ulimit --shm-size --tmpfs --volume -v --mount --volumes-from --label -l --stop-signal --stop-timeout --restart --runtime --network --net --ip --network-alias --publish -p --add-host --dns --log-driver --log-opt --pull --health-cmd --health-interval --health-timeout --health-start-period --health-start-interval --health-retries --health-on-failure" ;;
	"commit") echo "--message -m --author -a --change -c" ;;
	"container commit") echo "--message -m --author -a --change -c" ;;
	"container create") echo "--name --env -e --env-file --workdir -w --user -u --entrypoint --hostname --cap-add --cap-drop --security-opt --memory -m --cpus --pids-limit --ulimit --shm-size --tmpfs --volume -v --mount --volumes-from --label -l --stop-signal --stop-timeout --restart --runtime --network --net --ip --network-alias --publish -p --add-host --dns --log-driver --log-opt --pull --health-cmd --health-interval --health-timeout --health-start-period --health-start-interval --health-retries --health-on-failure" ;;
	"container exec") echo "--env -e --env-file --user -u --workdir -w" ;;
	"container export") echo "--output -o" ;;
	"container inspect") echo "--format -f --type" ;;
	"container kill") echo "--signal -s" ;;
	"container logs") echo "--tail -n --since --until" ;;
	"container ls") echo "--filter -f --format --last -n" ;;
	"container restart") echo "--time -t" ;;
	"container run") echo "--name --env -e --env-file --workdir -w --user -u --entrypoint --hostname --cap-add --cap-drop --security-opt --memory -m --cpus --pids-limit --ulimit --shm-size --tmpfs --volume -v --mount --volumes-from --label -l --stop-signal --stop-timeout --restart --runtime --network --net --ip --network-alias --publish -p --add-host --dns --log-driver --log-opt --pull --health-cmd --health-interval --health-timeout --health-start-period --health-start-interval --health-retries --health-on-failure" ;;
	"container stats") echo "--format" ;;
	"container stop") echo "--time -t" ;;
	"create") echo "--name --env -e --env-file --workdir -w --user -u --entrypoint --hostname --cap-add --cap-drop --security-opt --memory -m --cpus --pids-limit --ulimit --shm-size --tmpfs --volume -v --mount --volumes-from --label -l --stop-signal --stop-timeout --restart --runtime --network --net --ip --network-alias --publish -p --add-host --dns --log-driver --log-opt --pull --health-cmd --health-interval --health-timeout --health-start-period --health-start-interval --health-retries --health-on-failure" ;;
	"events") echo "--since --until --filter -f --format" ;;
	"exec") echo "--env -e --env-file --user -u --workdir -w" ;;
	"export") echo "--output -o" ;;
	"history") echo "--format" ;;
	"image history") echo "--format" ;;
	"image import") echo "--change -c --message -m" ;;
	"image inspect") echo "--format -f --type" ;;
	"image load") echo "--input -i" ;;
	"image ls") echo "--filter -f --format" ;;
	"image pull") echo "--platform" ;;
	"image save") echo "--output -o --format" ;;
	"images") echo "--filter -f --format" ;;
	"import") echo "--change -c --message -m" ;;
	"inspect") echo "--format -f --type" ;;
	"kill") echo "--signal -s" ;;
	"load") echo "--input -i" ;;
	"login") echo "--username -u --password -p" ;;
	"logs") echo "--tail -n --since --until" ;;
	"network connect") echo "--alias --ip" ;;
	"network create") echo "--driver -d --subnet --gateway --label --opt -o" ;;
	"network inspect") echo "--format -f" ;;
	"network ls") echo "--filter -f --format" ;;
	"ps") echo "--filter -f --format --last -n" ;;
	"pull") echo "--platform" ;;
	"restart") echo "--time -t" ;;
	"run") echo "--name --env -e --env-file --workdir -w --user -u --entrypoint --hostname --cap-add --cap-drop --security-opt --memory -m --cpus --pids-limit --ulimit --shm-size --tmpfs --volume -v --mount --volumes-from --label -l --stop-signal --stop-timeout --restart --runtime --network --net --ip --network-alias --publish -p --add-host --dns --log-driver --log-opt --pull --health-cmd --health-interval --health-timeout --health-start-period --health-start-interval --health-retries --health-on-failure" ;;
	"save") echo "--output -o --format" ;;
	"stats") echo "--format" ;;
	"stop") echo "--time -t" ;;
	"system df") echo "--format" ;;
	"system service") echo "--time -t --runtime" ;;
	"system metrics") echo "--listen" ;;
	"volume create") echo "--driver -d --label -l --opt -o" ;;
	"volume export") echo "--output -o" ;;
	"volume inspect") echo "--format -f" ;;
	"volume ls") echo "--filter -f --format" ;;
	"volume prune") echo "--filter" ;;
	esac
}

# __berth_flag_values KEY FLAG: what a flag's value completes to: "file",
# "words:W1 W2..." or nothing.
__berth_flag_values() {
	case "$1 $2" in
	"build --file"|"build -f"|"image build --file"|"image build -f") echo "file" ;;
	"build --iidfile"|"image build --iidfile") echo "file" ;;
	"build --progress"|"image build --progress") echo "words:auto plain quiet" ;;
	"bundle --env-file") echo "file" ;;
	"bundle --stop-signal") echo "words:SIGTERM SIGKILL SIGINT SIGHUP SIGQUIT SIGUSR1 SIGUSR2" ;;
	"bundle --restart") echo "words:no on-failure always unless-stopped" ;;
	"bundle --network"|"bundle --net") echo "words:none host" ;;
	"bundle --log-driver") echo "words:k8s-file json-file none" ;;
	"bundle --pull") echo "words:missing always never" ;;
	"container create --env-file") echo "file" ;;
	"container create --stop-signal") echo "words:SIGTERM SIGKILL SIGINT SIGHUP SIGQUIT SIGUSR1 SIGUSR2" ;;
	"container create --restart") echo "words:no on-failure always unless-stopped" ;;
	"container create --network"|"container create --net") echo "words:none host" ;;
	"container create --log-driver") echo "words:k8s-file json-file none" ;;
	"container create --pull") echo "words:missing always never" ;;
	"container exec --env-file") echo "file" ;;
	"container export --output"|"container export -o") echo "file" ;;
	"container inspect --format"|"container inspect -f") echo "words:json table" ;;
	"container kill --signal"|"container kill -s") echo "words:SIGTERM SIGKILL SIGINT SIGHUP SIGQUIT SIGUSR1 SIGUSR2 SIGSTOP SIGCONT" ;;
	"container ls --format") echo "words:json table" ;;
	"container run --env-file") echo "file" ;;
	"container run --stop-signal") echo "words:SIGTERM SIGKILL SIGINT SIGHUP SIGQUIT SIGUSR1 SIGUSR2" ;;
	"container run --restart") echo "words:no on-failure always unless-stopped" ;;
	"container run --network"|"container run --net") echo "words:none host" ;;
	"container run --log-driver") echo "words:k8s-file json-file none" ;;
	"container run --pull") echo "words:missing always never" ;;
	"container stats --format") echo "words:json table" ;;
	"create --env-file") echo "file" ;;
	"create --stop-signal") echo "words:SIGTERM SIGKILL SIGINT SIGHUP SIGQUIT SIGUSR1 SIGUSR2" ;;
	"create --restart") echo "words:no on-failure always unless-stopped" ;;
	"create --network"|"create --net") echo "words:none host" ;;
	"create --log-driver") echo "words:k8s-file json-file none" ;;
	"create --pull") echo "words:missing always never" ;;
	"events --filter"|"events -f") echo "words:type=container type=image event= container= image= label=" ;;
	"events --format") echo "words:json table" ;;
	"exec --env-file") echo "file" ;;
	"export --output"|"export -o") echo "file" ;;
	"history --format") echo "words:json table" ;;
	"image history --format") echo "words:json table" ;;
	"image inspect --format"|"image inspect -f") echo "words:json table" ;;
	"image load --input"|"image load -i") echo "file" ;;
	"image ls --format") echo "words:json table" ;;
	"image save --output"|"image save -o") echo "file" ;;
	"image save --format") echo "words:json table" ;;
	"images --format") echo "words:json table" ;;
	"inspect --format"|"inspect -f") echo "words:json table" ;;
	"kill --signal"|"kill -s") echo "words:SIGTERM SIGKILL SIGINT SIGHUP SIGQUIT SIGUSR1 SIGUSR2 SIGSTOP SIGCONT" ;;
	"load --input"|"load -i") echo "file" ;;
	"network inspect --format"|"network inspect -f") echo "words:json table" ;;
	"network ls --format") echo "words:json table" ;;
	"ps --format") echo "words:json table" ;;
	"run --env-file") echo "file" ;;
	"run --stop-signal") echo "words:SIGTERM SIGKILL SIGINT SIGHUP SIGQUIT SIGUSR1 SIGUSR2" ;;
	"run --restart") echo "words:no on-failure always unless-stopped" ;;
	"run --network"|"run --net") echo "words:none host" ;;
	"run --log-driver") echo "words:k8s-file json-file none" ;;
	"run --pull") echo "words:missing always never" ;;
	"save --output"|"save -o") echo "file" ;;
	"save --format") echo "words:docker-archive oci-archive oci-dir" ;;
	"stats --format") echo "words:json table" ;;
	"system df --format") echo "words:json table" ;;
	"volume export --output"|"volume export -o") echo "file" ;;
	"volume inspect --format"|"volume inspect -f") echo "words:json table" ;;
	"volume ls --format") echo "words:json table" ;;
	"create --health-on-failure"|"run --health-on-failure"|"container create --health-on-failure"|"container run --health-on-failure") echo "words:none kill restart stop" ;;
	" --config") echo "file" ;;
	" --storage-driver") echo "words:overlay vfs" ;;
	" --log-level") echo "words:debug info warn error" ;;
	esac
}

# __berth_args KEY: what the first and the other arguments complete to:
# ctr (containers), img (images), vol (volumes), net (networks), any, file,
# dir, cp, - (nothing).
__berth_args() {
	case $1 in
	"attach") echo "ctr -" ;;
	"build") echo "dir -" ;;
	"builder prune") echo "- -" ;;
	"healthcheck run") echo "ctr -" ;;
	"image build") echo "dir -" ;;
	"bundle") echo "img dir" ;;
	"commit") echo "ctr img" ;;
	"diff") echo "ctr -" ;;
	"container diff") echo "ctr -" ;;
	"container attach") echo "ctr -" ;;
	"container commit") echo "ctr img" ;;
	"container cp") echo "cp cp" ;;
	"container create") echo "img -" ;;
	"container exec") echo "ctr -" ;;
	"container export") echo "ctr -" ;;
	"container inspect") echo "ctr ctr" ;;
	"container kill") echo "ctr ctr" ;;
	"container logs") echo "ctr -" ;;
	"container pause") echo "ctr ctr" ;;
	"container port") echo "ctr -" ;;
	"container rename") echo "ctr -" ;;
	"container restart") echo "ctr ctr" ;;
	"container rm") echo "ctr ctr" ;;
	"container run") echo "img -" ;;
	"container start") echo "ctr ctr" ;;
	"container stats") echo "ctr ctr" ;;
	"container stop") echo "ctr ctr" ;;
	"container top") echo "ctr -" ;;
	"container unpause") echo "ctr ctr" ;;
	"container update") echo "ctr ctr" ;;
	"container wait") echo "ctr ctr" ;;
	"cp") echo "cp cp" ;;
	"create") echo "img -" ;;
	"exec") echo "ctr -" ;;
	"export") echo "ctr -" ;;
	"history") echo "img -" ;;
	"image history") echo "img -" ;;
	"image import") echo "file -" ;;
	"image inspect") echo "img img" ;;
	"image pull") echo "img -" ;;
	"image push") echo "img -" ;;
	"image rm") echo "img img" ;;
	"image save") echo "img img" ;;
	"image tag") echo "img -" ;;
	"import") echo "file -" ;;
	"inspect") echo "any any" ;;
	"kill") echo "ctr ctr" ;;
	"logs") echo "ctr -" ;;
	"network connect") echo "net ctr" ;;
	"network disconnect") echo "net ctr" ;;
	"network inspect") echo "net net" ;;
	"network rm") echo "net net" ;;
	"pause") echo "ctr ctr" ;;
	"port") echo "ctr -" ;;
	"pull") echo "img -" ;;
	"push") echo "img -" ;;
	"rename") echo "ctr -" ;;
	"restart") echo "ctr ctr" ;;
	"rm") echo "ctr ctr" ;;
	"rmi") echo "img img" ;;
	"run") echo "img -" ;;
	"save") echo "img img" ;;
	"start") echo "ctr ctr" ;;
	"stats") echo "ctr ctr" ;;
	"stop") echo "ctr ctr" ;;
	"tag") echo "img -" ;;
	"top") echo "ctr -" ;;
	"unpause") echo "ctr ctr" ;;
	"update") echo "ctr ctr" ;;
	"volume export") echo "vol -" ;;
	"volume import") echo "vol file" ;;
	"volume inspect") echo "vol vol" ;;
	"volume rm") echo "vol vol" ;;
	"wait") echo "ctr ctr" ;;
	*) echo "- -" ;;
	esac
}

# __berth_query ARGS...: run berth with the command line's global flags.
__berth_query() {
	"$__berth_bin" "${__berth_globals[@]}" "$@" 2>/dev/null
}

__berth_containers() { __berth_query ps -a --format '{{.Names}}'; }
# Images by their stored names and as they are typed: without the
# localhost/ of imported and committed images or docker.io/library/.
__berth_images() {
	local n
	for n in $(__berth_query images --format '{{.Repository}}:{{.Tag}}'); do
		[[ $n == *'<none>'* ]] && continue
		echo "$n"
		case $n in
		localhost/*) echo "${n#localhost/}" ;;
		docker.io/library/*) echo "${n#docker.io/library/}" ;;
		esac
	done
}
__berth_volumes() { __berth_query volume ls -q; }
__berth_networks() { __berth_query network ls --format '{{.Name}}'; }

# __berth_reply WORDS...: the words that start with the current word.
__berth_reply() {
	local w
	COMPREPLY=()
	for w in "$@"; do
		[[ $w == "$__berth_cur"* ]] && COMPREPLY+=("$w")
	done
	__berth_trim_colon
}

# Bash splits words at ":" (COMP_WORDBREAKS): what is before the current
# word's last colon is already on the line.
__berth_trim_colon() {
	if [[ $__berth_cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
		local prefix=${__berth_cur%"${__berth_cur##*:}"} i
		for i in "${!COMPREPLY[@]}"; do
			COMPREPLY[i]=${COMPREPLY[i]#"$prefix"}
		done
	fi
}

__berth_files() {
	local IFS=$'\n'
	COMPREPLY=($(compgen -f -- "$__berth_cur"))
	compopt -o filenames 2>/dev/null
}

__berth_dirs() {
	local IFS=$'\n'
	COMPREPLY=($(compgen -d -- "$__berth_cur"))
	compopt -o filenames 2>/dev/null
}

__berth_complete_kind() {
	local IFS=$'\n'
	case $1 in
	ctr) __berth_reply $(__berth_containers) ;;
	img) __berth_reply $(__berth_images) ;;
	vol) __berth_reply $(__berth_volumes) ;;
	net) __berth_reply $(__berth_networks) ;;
	any) __berth_reply $(__berth_containers) $(__berth_images) ;;
	file) __berth_files ;;
	dir) __berth_dirs ;;
	cp)
		# CONTAINER:PATH or a host path.
		if [[ $__berth_cur == *:* ]]; then
			COMPREPLY=()
			return
		fi
		local c
		COMPREPLY=()
		for c in $(__berth_containers); do
			[[ $c: == "$__berth_cur"* ]] && COMPREPLY+=("$c:")
		done
		COMPREPLY+=($(compgen -f -- "$__berth_cur"))
		compopt -o nospace 2>/dev/null
		;;
	*) COMPREPLY=() ;;
	esac
}

_berth() {
	# Words from the line itself: COMP_WORDS splits "busybox:latest" and
	# "ctr:/path" at the colon.
	local -a words
	if [[ -n $COMP_LINE ]]; then
		local line=${COMP_LINE:0:COMP_POINT}
		read -r -a words <<<"$line"
		[[ $line == *[[:space:]] || ${#words[@]} -eq 0 ]] && words+=("")
	else
		words=("${COMP_WORDS[@]:0:COMP_CWORD+1}")
	fi
	local cword=$((${#words[@]} - 1))
	__berth_cur=${words[cword]}
	__berth_bin=${words[0]}
	__berth_globals=()
	local prev=${words[cword - 1]}

	# Global flags, then the command (and the subcommand of a group).
	local i=1 cmd="" key=""
	while ((i < cword)); do
		local w=${words[i]}
		case $w in
		--*=*) __berth_globals+=("$w") ;;
		-*)
			if [[ " $__berth_global_value_flags " == *" $w "* ]]; then
				__berth_globals+=("$w" "${words[i + 1]}")
				((i++))
			fi
			;;
		*)
			cmd=$w
			((i++))
			break
			;;
		esac
		((i++))
	done
	if [[ -z $cmd ]]; then
		if [[ " $__berth_global_value_flags " == *" $prev "* ]]; then
			__berth_value "" "$prev"
			return
		fi
		if [[ $__berth_cur == -* ]]; then
			__berth_reply $__berth_global_flags
		else
			__berth_reply $__berth_commands
		fi
		return
	fi
	key=$cmd
	local groupvar=__berth_sub_$cmd
	if [[ $cmd =~ ^[a-z]+$ && -n ${!groupvar} ]]; then
		# A group: its subcommand first.
		local sub=""
		while ((i < cword)); do
			if [[ ${words[i]} != -* ]]; then
				sub=${words[i]}
				((i++))
				break
			fi
			((i++))
		done
		if [[ -z $sub ]]; then
			__berth_reply ${!groupvar}
			return
		fi
		case "$cmd $sub" in
		"container list" | "image list") sub=ls ;;
		"image remove" | "image rmi") sub=rm ;;
		"volume list" | "network list") sub=ls ;;
		"volume remove" | "network remove") sub=rm ;;
		esac
		key="$cmd $sub"
	fi
	local valueflags=" $(__berth_value_flags "$key") "
	if [[ $prev == -* && $valueflags == *" $prev "* ]]; then
		__berth_value "$key" "$prev"
		return
	fi
	if [[ $__berth_cur == -* ]]; then
		__berth_reply $(__berth_flags "$key")
		return
	fi
	# Which argument is this? Flags and their values do not count.
	local n=0
	while ((i < cword)); do
		local w=${words[i]}
		if [[ $w == -* ]]; then
			[[ $w != *=* && $valueflags == *" $w "* ]] && ((i++))
		else
			((n++))
		fi
		((i++))
	done
	local kinds
	read -r -a kinds <<<"$(__berth_args "$key")"
	if ((n == 0)); then
		__berth_complete_kind "${kinds[0]}"
	else
		__berth_complete_kind "${kinds[1]}"
	fi
}

# __berth_value KEY FLAG: complete a flag's value.
__berth_value() {
	local what
	what=$(__berth_flag_values "$1" "$2")
	case $what in
	file) __berth_files ;;
	words:*) __berth_reply ${what#words:} ;;
	*) COMPREPLY=() ;;
	esac
}

complete -F _berth berth
