<#
.SYNOPSIS
    Registers procorefs with the WinFsp launcher so a Procore drive mounts when you sign in,
    and removes it again.

.DESCRIPTION
    install    Checks that WinFsp is installed, writes the launcher's service class
               HKLM\SOFTWARE\WOW6432Node\WinFsp\Services\procorefs (Executable, CommandLine,
               Security, JobControl, Credentials=0, RunAs=.), and adds a per-user sign-in
               entry (HKCU Run key "procorefs-<instance>") that runs
               launchctl-x64.exe start procorefs <instance> <drive> <settings file>
               unelevated, so the drive belongs to your normal (non-elevated) session and
               Explorer sees it. It does not start the drive from the elevated window (the
               drive would belong to the elevated session); it prints the command to run.
    uninstall  Stops the instance(s), removes the sign-in entries and, with -All or when no
               instance is left, the launcher registration.
    status     Shows what is registered and what the launcher runs.

    Run install/uninstall from an ELEVATED PowerShell (the launcher's key lives in HKLM),
    as the user who will use the drive: the sign-in entry goes to that user's HKCU, and the
    mount runs as that user (RunAs=.), with that user's keyring and settings.

.EXAMPLE
    .\procorefs-launcher.ps1 install -Instance harbor-view -Drive P: -Settings "$env:APPDATA\procorefs\mounts\harbor-view.toml"

.EXAMPLE
    .\procorefs-launcher.ps1 uninstall -Instance harbor-view
#>
[CmdletBinding(SupportsShouldProcess = $true)]
param(
    [Parameter(Position = 0)]
    [ValidateSet('install', 'uninstall', 'status')]
    [string] $Action = 'status',

    # One name per drive: letters, digits, '-' and '_'.
    [ValidatePattern('^[A-Za-z0-9_-]{1,40}$')]
    [string] $Instance = 'procore',

    # A drive letter (P:), * for the first free letter from Z: backwards, or a directory.
    [string] $Drive = '*',

    # The mount's settings (environment, company_id, project_id, ...); never a token.
    [string] $Settings,

    # The procorefs executable; default: the one on PATH (pipx puts it in ~\.local\bin).
    [string] $Executable,

    # Mount as a network drive (\\procorefs\...): Explorer then skips thumbnails.
    [switch] $Network,

    # uninstall: remove every instance and the launcher registration.
    [switch] $All
)

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$ClassName = 'procorefs'
$RunKey = 'HKCU:\Software\Microsoft\Windows\CurrentVersion\Run'
$RunPrefix = 'procorefs-'

function Get-WinFspDir {
    # WinFsp keeps its settings in the 32-bit view of HKLM on 64-bit Windows.
    foreach ($key in 'HKLM:\SOFTWARE\WOW6432Node\WinFsp', 'HKLM:\SOFTWARE\WinFsp') {
        $item = Get-ItemProperty -Path $key -Name InstallDir -ErrorAction SilentlyContinue
        if ($item -and (Test-Path -LiteralPath $item.InstallDir)) {
            return $item.InstallDir
        }
    }
    throw ('WinFsp is not installed. Install it from https://winfsp.dev/rel/ ' +
           '(or: choco install winfsp), then run this script again.')
}

function Get-ServicesKey {
    if ([Environment]::Is64BitOperatingSystem) {
        return 'HKLM:\SOFTWARE\WOW6432Node\WinFsp\Services'
    }
    return 'HKLM:\SOFTWARE\WinFsp\Services'
}

function Get-Launchctl([string] $WinFspDir) {
    $name = switch ($env:PROCESSOR_ARCHITECTURE) {
        'AMD64' { 'launchctl-x64.exe' }
        'ARM64' { 'launchctl-a64.exe' }
        default { 'launchctl-x86.exe' }
    }
    $path = Join-Path (Join-Path $WinFspDir 'bin') $name
    if (-not (Test-Path -LiteralPath $path)) {
        throw "WinFsp's $name is missing from $WinFspDir\bin; repair the WinFsp installation."
    }
    return $path
}

function Assert-Elevated {
    $principal = [Security.Principal.WindowsPrincipal] [Security.Principal.WindowsIdentity]::GetCurrent()
    if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
        throw 'Run this from an elevated PowerShell ("Run as administrator"): the WinFsp launcher is configured in HKLM.'
    }
}

function Get-UserSid {
    return [Security.Principal.WindowsIdentity]::GetCurrent().User.Value
}

function Resolve-Executable {
    if ($Executable) {
        return (Resolve-Path -LiteralPath $Executable).Path
    }
    $found = Get-Command procorefs -CommandType Application -ErrorAction SilentlyContinue |
        Select-Object -First 1
    if (-not $found) {
        throw 'procorefs is not on PATH. Install it (pipx install procorefs) or pass -Executable.'
    }
    return $found.Source
}

function Get-RunEntries {
    $props = Get-ItemProperty -Path $RunKey -ErrorAction SilentlyContinue
    if (-not $props) { return @() }
    return @($props.PSObject.Properties | Where-Object { $_.Name -like "$RunPrefix*" })
}

function Install-Procorefs {
    Assert-Elevated
    $winfsp = Get-WinFspDir
    $launchctl = Get-Launchctl $winfsp
    $exe = Resolve-Executable
    if (-not $Settings) {
        throw 'Give the mount its settings file with -Settings (see README.md).'
    }
    $settingsPath = (Resolve-Path -LiteralPath $Settings).Path
    if ((Get-Content -LiteralPath $settingsPath -Raw) -match '(?im)^\s*(access_token|refresh_token|client_secret)\s*=') {
        throw "$settingsPath holds a secret; keep tokens in the keyring (procorefs login)."
    }

    $servicesKey = Get-ServicesKey
    $classKey = Join-Path $servicesKey $ClassName
    # %1 = the drive or directory, %2 = the settings file (launchctl start arguments).
    $commandLine = 'mount --foreground --config "%2"'
    if ($Network) { $commandLine += ' --network' }
    $commandLine += ' -- %1'
    $sid = Get-UserSid

    if ($PSCmdlet.ShouldProcess($classKey, 'register procorefs with the WinFsp launcher')) {
        New-Item -Path $classKey -Force | Out-Null
        New-ItemProperty -Path $classKey -Name Executable -Value $exe -PropertyType String -Force | Out-Null
        New-ItemProperty -Path $classKey -Name CommandLine -Value $commandLine -PropertyType String -Force | Out-Null
        # Only this user (and Administrators) may start, stop and query procorefs instances.
        New-ItemProperty -Path $classKey -Name Security -Value "D:P(A;;RPWPLC;;;$sid)(A;;RPWPLC;;;BA)" -PropertyType String -Force | Out-Null
        # Run as the user who starts the instance: their keyring, their settings, their session.
        New-ItemProperty -Path $classKey -Name RunAs -Value '.' -PropertyType String -Force | Out-Null
        # Stopping the instance ends the whole process tree.
        New-ItemProperty -Path $classKey -Name JobControl -Value 1 -PropertyType DWord -Force | Out-Null
        # No password prompt: procorefs signs in with the token in the keyring.
        New-ItemProperty -Path $classKey -Name Credentials -Value 0 -PropertyType DWord -Force | Out-Null
    }

    $entry = "`"$launchctl`" start $ClassName $Instance $Drive `"$settingsPath`""
    if ($PSCmdlet.ShouldProcess("$RunKey\$RunPrefix$Instance", 'mount at sign-in')) {
        New-Item -Path $RunKey -Force | Out-Null
        New-ItemProperty -Path $RunKey -Name "$RunPrefix$Instance" -Value $entry -PropertyType String -Force | Out-Null
    }

    Write-Host "Registered: $classKey"
    Write-Host "At sign-in: $entry"
    # Started from this elevated window the drive would belong to the elevated session, which
    # the normal Explorer cannot see: say how to start it instead.
    Write-Host ('To mount now, run in a NON-elevated window (or sign out and in): ' +
                "& '$launchctl' start $ClassName $Instance $Drive '$settingsPath'")
}

function Uninstall-Procorefs {
    Assert-Elevated
    $winfsp = Get-WinFspDir
    $launchctl = Get-Launchctl $winfsp
    $instances = if ($All) {
        @(Get-RunEntries | ForEach-Object { $_.Name.Substring($RunPrefix.Length) })
    } else {
        @($Instance)
    }
    foreach ($name in $instances) {
        if ($PSCmdlet.ShouldProcess($name, 'stop and remove the sign-in entry')) {
            # Stopping an instance that does not run is not an error here.
            & $launchctl stop $ClassName $name 2>&1 | Out-Null
            Remove-ItemProperty -Path $RunKey -Name "$RunPrefix$name" -ErrorAction SilentlyContinue
            Write-Host "Removed instance $name"
        }
    }
    $classKey = Join-Path (Get-ServicesKey) $ClassName
    if (($All -or @(Get-RunEntries).Count -eq 0) -and (Test-Path -LiteralPath $classKey)) {
        if ($PSCmdlet.ShouldProcess($classKey, 'remove the launcher registration')) {
            Remove-Item -LiteralPath $classKey -Recurse -Force
            Write-Host "Removed $classKey"
        }
    }
}

function Show-Status {
    $winfsp = Get-WinFspDir
    $launchctl = Get-Launchctl $winfsp
    Write-Host "WinFsp: $winfsp"
    $classKey = Join-Path (Get-ServicesKey) $ClassName
    if (Test-Path -LiteralPath $classKey) {
        Get-ItemProperty -LiteralPath $classKey |
            Select-Object Executable, CommandLine, Security, RunAs, JobControl, Credentials |
            Format-List
    } else {
        Write-Host 'procorefs is not registered with the WinFsp launcher.'
    }
    foreach ($entry in Get-RunEntries) {
        Write-Host ("At sign-in ({0}): {1}" -f $entry.Name, $entry.Value)
    }
    & $launchctl list
}

switch ($Action) {
    'install' { Install-Procorefs }
    'uninstall' { Uninstall-Procorefs }
    'status' { Show-Status }
}
