package org.shimmer.examples.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import picocli.CommandLine.Option;

/** The options {@code run} and {@code exec} share: the process's streams, environment, user and directory. */
final class ProcessOptions {

    @Option(names = {"-i", "--interactive"}, description = "Forward our stdin to the process (not read without).")
    boolean interactive;

    @Option(names = {"-t", "--tty"}, description = "Give the process a terminal.")
    boolean tty;

    @Option(names = {"-e", "--env"}, paramLabel = "K[=V]", description = "Set K (K alone: our own value of K).")
    List<String> env = new ArrayList<>();

    @Option(names = "--env-file", paramLabel = "FILE", description = "Read K=V lines; # comments, K alone as -e.")
    List<Path> envFiles = new ArrayList<>();

    @Option(names = {"-u", "--user"}, paramLabel = "USER[:GROUP]", description = "Names or numeric ids.")
    String user;

    @Option(names = {"-w", "--cwd", "--workdir"}, paramLabel = "DIR", description = "Working directory inside.")
    String cwd;

    /** The entries of the env files, then of {@code -e}, later ones replacing earlier ones of the same name. */
    Map<String, String> environment(Map<String, String> ours) {
        Map<String, String> all = new LinkedHashMap<>();
        for (Path file : envFiles) {
            all.putAll(EnvFile.read(file, ours));
        }
        all.putAll(EnvFile.entries(env, ours, "-e"));
        return all;
    }
}
