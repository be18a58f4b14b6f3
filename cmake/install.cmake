# install.cmake - where `cmake --install` (and so the Debian package)
# puts herald: daemons in <prefix>/lib/herald (HERALD_DAEMON_DIR must say
# the same), heraldctl and sendmail in <prefix>/sbin, the fail2ban filter
# and jail in /etc/fail2ban. man/CMakeLists.txt installs the man pages.
foreach(daemon master smtpd qmgr local remote authd signer pop3d imapd)
	if(TARGET ${daemon})
		install(TARGETS ${daemon} DESTINATION lib/herald)
	endif()
endforeach()
install(TARGETS heraldctl DESTINATION sbin)
if(TARGET sendmail)
	install(TARGETS sendmail DESTINATION sbin)
endif()
install(FILES etc/fail2ban/filter.d/herald.conf
	DESTINATION /etc/fail2ban/filter.d)
install(FILES etc/fail2ban/jail.d/herald.conf
	DESTINATION /etc/fail2ban/jail.d)
